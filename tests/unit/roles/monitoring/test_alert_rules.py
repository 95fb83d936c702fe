"""The alert rules shipped for Prometheus (roles/monitoring/files/prometheus, docs/monitoring.md, R10.2a).

promtool comes from Debian's ``prometheus`` package (scripts/setup.sh installs it). Without it these tests are
skipped locally; scripts/test.sh sets SONLA_REQUIRE_PROMTOOL=1, so CI fails instead of skipping.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[4]
RULES = ROOT / "roles/monitoring/files/prometheus/sonla-mail-rules.yml"
TESTS = ROOT / "tests/prometheus/sonla-mail-rules.test.yml"
PROMTOOL = shutil.which("promtool")

# The alerts issue 18 asks for, each by the rule that raises it.
REQUIRED = {
    "a service down": "SonlaMailServiceDown",
    "the queue above a threshold": "SonlaMailQueueHigh",
    "disk above a threshold": "SonlaMailDiskFull",
    "a certificate expiring in under 21 days": "SonlaMailCertificateExpiring",
    "no successful lifecycle run in 26 hours": "SonlaMailLifecycleNotRun",
    "last-login writes failing": "SonlaMailLastLoginWritesFailing",
    "no good backup in 26 hours": "SonlaMailBackupMissing",
    "a spike of refused logins": "SonlaMailRefusedLoginsSpike",
}


def promtool(*args: str) -> subprocess.CompletedProcess:
    if PROMTOOL is None:
        if os.environ.get("SONLA_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is missing (Debian package prometheus; scripts/setup.sh installs it)")
        pytest.skip("promtool is missing (Debian package prometheus)")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False, timeout=120)


def alerts() -> list[str]:
    return [rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_the_rules_are_valid():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_passes_its_promtool_test():
    result = promtool("test", "rules", str(TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_required_alert_exists_and_every_alert_has_a_test_case():
    """Issue 18: one test case per alert, each checking that alert when it fires."""
    names = alerts()
    assert set(REQUIRED.values()) <= set(names)
    assert len(names) == len(set(names))
    tested = [case["alertname"] for test in yaml.safe_load(TESTS.read_text())["tests"]
              for case in test["alert_rule_test"] if case["exp_alerts"]]
    assert sorted(set(tested)) == sorted(names)
