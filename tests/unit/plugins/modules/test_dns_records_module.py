# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dns_records module: snippets from the key files on the server, the resolver's answers compared, clear errors."""

from unittest import mock

import pytest
from module_runner import run

from ansible_collections.sonla.mail.plugins.module_utils._dns_records import mta_sts_policy
from ansible_collections.sonla.mail.plugins.modules import dns_records

PEM = "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\nAQAB\n-----END PUBLIC KEY-----\n"
POLICY = mta_sts_policy("testing", ["mail.sonla.gov.vn"], 604800)


@pytest.fixture
def args(tmp_path):
    (tmp_path / "sonla.gov.vn.s2026.pub").write_text(PEM, encoding="ascii")
    return {"domains": ["sonla.gov.vn"], "mx_hosts": ["mail.sonla.gov.vn"], "mta_sts_policy": POLICY,
            "dkim": [{"domain": "sonla.gov.vn", "selector": "s2026", "state": "active", "path": "/never/read.key",
                      "public_path": str(tmp_path / "sonla.gov.vn.s2026.pub")},
                     {"domain": "sonla.gov.vn", "selector": "s2025", "state": "retired",
                      "public_path": str(tmp_path / "gone.pub")}]}


def dig_serving(records):
    """A stand-in for run_command answering like dig from ``{(name, type): [rdata]}``."""
    def run_command(self, argv):
        name, rtype = argv[-2], argv[-1]
        return 0, "".join(f"{name} 300 IN {rtype} {rdata}\n" for rdata in records.get((name, rtype), [])), ""
    return run_command


def test_the_snippet_carries_the_public_key_and_nothing_is_checked_without_a_resolver(args):
    ok, result = run(dns_records, args)
    assert ok and not result["changed"] and result["differences"] == []
    assert 's2026._domainkey.sonla.gov.vn. 3600 IN TXT "v=DKIM1; k=rsa; p=MIIBIjANAQAB"' in result["snippets"]["sonla.gov.vn"]
    assert "; REMOVE s2025._domainkey.sonla.gov.vn. TXT" in result["snippets"]["sonla.gov.vn"]


def test_the_resolver_answers_are_compared(args):
    _, expected = run(dns_records, args)
    served = {(r["name"], r["type"]): [f'"{r["value"]}"' if r["type"] == "TXT" else r["value"]]
              for r in expected["records"]["sonla.gov.vn"] if r["present"]}
    del served[("_smtp._tls.sonla.gov.vn.", "TXT")]
    with mock.patch.object(dns_records.AnsibleModule, "get_bin_path", return_value="/usr/bin/dig"), \
            mock.patch.object(dns_records.AnsibleModule, "run_command", dig_serving(served)):
        ok, result = run(dns_records, {**args, "resolver": "127.0.0.1"})
    assert ok
    assert [(d["problem"], d["name"]) for d in result["differences"]] == [("missing", "_smtp._tls.sonla.gov.vn.")]


def test_a_resolver_that_does_not_answer_is_named(args):
    with mock.patch.object(dns_records.AnsibleModule, "get_bin_path", return_value="/usr/bin/dig"), \
            mock.patch.object(dns_records.AnsibleModule, "run_command",
                              lambda self, argv: (9, ";; connection timed out; no servers could be reached", "")):
        ok, result = run(dns_records, {**args, "resolver": "192.0.2.53"})
    assert not ok and "the resolver 192.0.2.53 did not answer" in result["msg"]


def test_a_missing_public_key_says_to_converge_first(args):
    args["dkim"][0]["public_path"] = "/nonexistent/sonla.gov.vn.s2026.pub"
    ok, result = run(dns_records, args)
    assert not ok and "DKIM key s2026 of sonla.gov.vn" in result["msg"] and "converge playbooks/site.yml" in result["msg"]


def test_a_bad_dkim_entry_is_refused(args):
    ok, result = run(dns_records, {**args, "dkim": [{"domain": "sonla.gov.vn", "selector": "s1", "state": "on"}]})
    assert not ok and "needs domain, selector, public_path and a state" in result["msg"]
