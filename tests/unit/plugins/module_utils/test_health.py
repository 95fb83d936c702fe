"""The health check's verdicts, table, metrics and mail (docs/monitoring.md, R10.2a)."""

from datetime import UTC, datetime, timedelta

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _health

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEFAULTS = _health.Thresholds()


def healthy_facts(**changes) -> _health.Facts:
    facts = _health.Facts(
        host="mail.sonla.gov.vn", now=NOW, services={"postfix": True, "dovecot": True},
        certificates={"/etc/ssl/sonla-mail/mail.crt": NOW + timedelta(days=90)}, queue=3, disks={"/": 40.0},
        lifecycle_at=NOW - timedelta(hours=10), backup=None, last_login_at=NOW - timedelta(minutes=5),
    )
    for key, value in changes.items():
        setattr(facts, key, value)
    return facts


def verdicts(facts, limits=DEFAULTS) -> dict[str, str]:
    return {check.name: check.status for check in _health.evaluate(facts, limits)}


def failed(facts, limits=DEFAULTS) -> list[str]:
    return [name for name, status in verdicts(facts, limits).items() if status == "FAIL"]


def test_a_healthy_server_passes_every_check_and_backups_are_not_applicable_before_the_first():
    checks = _health.evaluate(healthy_facts(), _health.Thresholds())
    assert _health.healthy(checks)
    assert [c.name for c in checks] == ["service postfix", "service dovecot", "certificate /etc/ssl/sonla-mail/mail.crt",
                                        "mail queue", "disk /", "lifecycle run", "last backup", "last login recorded",
                                        "last-login hook"]
    assert verdicts(healthy_facts())["last backup"] == "-"


@pytest.mark.parametrize(("changes", "red"), [
    ({"services": {"postfix": True, "dovecot": False}}, "service dovecot"),
    ({"certificates": {"/c.crt": NOW + timedelta(days=20, hours=23)}}, "certificate /c.crt"),
    ({"certificates": {"/c.crt": None}}, "certificate /c.crt"),
    ({"queue": 201}, "mail queue"),
    ({"queue": None}, "mail queue"),
    ({"disks": {"/var/vmail": 85.5}}, "disk /var/vmail"),
    ({"disks": {"/var/vmail": None}}, "disk /var/vmail"),
    ({"lifecycle_at": None}, "lifecycle run"),
    ({"lifecycle_at": NOW - timedelta(hours=26, minutes=1)}, "lifecycle run"),
    ({"lifecycle_alerts": ["60 idle suspensions (R8.2a) due"]}, "lifecycle run"),
    ({"backup": {"ok": False, "msg": "no good backup recorded"}}, "last backup"),
    ({"backup": {"ok": False, "age_hours": 30.0, "msg": "older than 26 h"}}, "last backup"),
    ({"last_login_at": None}, "last login recorded"),
    ({"last_login_at": NOW - timedelta(hours=73)}, "last login recorded"),
    ({"hook_failures": 4, "hook_failure_at": NOW - timedelta(hours=2)}, "last-login hook"),
])
def test_each_problem_turns_its_own_check_red(changes, red):
    """R10.2a: exactly the check concerned fails, so the table names what is wrong."""
    assert failed(healthy_facts(**changes)) == [red]


def test_the_boundaries_are_still_green():
    facts = healthy_facts(certificates={"/c.crt": NOW + timedelta(days=21)}, queue=200, disks={"/": 85.0},
                          lifecycle_at=NOW - timedelta(hours=26), last_login_at=NOW - timedelta(hours=72),
                          backup={"ok": True, "age_hours": 25.9, "msg": ""},
                          hook_failures=2, hook_failure_at=NOW - timedelta(hours=25))  # old failures: no longer red
    assert failed(facts) == []


def test_thresholds_come_from_the_configuration_and_unknown_ones_are_refused():
    limits = _health.Thresholds.from_config({"queue_max": 2, "certificate_min_days": 100})
    assert failed(healthy_facts(), limits) == ["certificate /etc/ssl/sonla-mail/mail.crt", "mail queue"]
    with pytest.raises(ValueError, match="unknown health thresholds: queue"):
        _health.Thresholds.from_config({"queue": 2})


def test_the_table_names_the_host_the_verdict_and_each_failed_check_with_its_reason():
    checks = _health.evaluate(healthy_facts(services={"dovecot": False}, queue=500), _health.Thresholds())
    text = _health.table("mail.sonla.gov.vn", checks)
    lines = text.splitlines()
    assert lines[0] == "mail.sonla.gov.vn: FAIL"
    assert [line.split()[:3] for line in lines if line.split()[0] == "FAIL"] == [
        ["FAIL", "service", "dovecot"], ["FAIL", "mail", "queue"]]
    assert "500 messages" in text and "above 200" in text
    assert _health.table("h", _health.evaluate(healthy_facts(), _health.Thresholds())).startswith("h: OK\n")


def test_the_metrics_are_prometheus_text_with_times_in_unix_seconds():
    facts = healthy_facts(services={"postfix": True, "dovecot": False}, hook_failures=3,
                          hook_failure_at=NOW, backup={"ok": True, "last_good_at": "2026-12-01 02:00:00", "msg": ""})
    text = _health.metrics(facts, _health.evaluate(facts, _health.Thresholds()))
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert samples['sonla_mail_service_up{service="dovecot"}'] == "0"
    assert samples['sonla_mail_service_up{service="postfix"}'] == "1"
    assert samples["sonla_mail_last_login_failures_total"] == "3"
    assert samples["sonla_mail_backup_last_good_timestamp_seconds"] == str(int(datetime(2026, 12, 1, 2, tzinfo=UTC).timestamp()))
    assert samples["sonla_mail_lifecycle_last_run_timestamp_seconds"] == str(int((NOW - timedelta(hours=10)).timestamp()))
    assert samples["sonla_mail_queue_messages"] == "3" and samples['sonla_mail_disk_used_ratio{path="/"}'] == "0.4000"
    assert samples["sonla_mail_healthy"] == "0"
    assert "# TYPE sonla_mail_last_login_failures_total counter" in text


def test_no_backup_metric_before_backups_exist_and_unreadable_values_are_marked():
    facts = healthy_facts(queue=None, disks={"/": None}, lifecycle_at=None)
    text = _health.metrics(facts, _health.evaluate(facts, _health.Thresholds()))
    assert "sonla_mail_backup_last_good_timestamp_seconds" not in text
    assert "sonla_mail_queue_messages -1" in text and 'sonla_mail_disk_used_ratio{path="/"} -1' in text
    assert "sonla_mail_lifecycle_last_run_timestamp_seconds 0" in text


def test_a_host_of_several_checks_only_what_it_runs():
    """Issue 15: a mailstore has no Postfix queue, no daily run and no user database of its own to read, but its
    last-login hook; the checks and the metrics leave the rest out instead of failing or alerting on it."""
    store = healthy_facts(services={"dovecot": True}, queue=None, lifecycle_at=None, last_login_at=None,
                          present=frozenset({"login_hook"}))
    checks = _health.evaluate(store, DEFAULTS)
    assert [c.name for c in checks] == ["service dovecot", "certificate /etc/ssl/sonla-mail/mail.crt", "disk /",
                                        "last backup", "last-login hook"]
    assert _health.healthy(checks)
    text = _health.metrics(store, checks)
    for absent in ("sonla_mail_queue_messages", "sonla_mail_lifecycle_last_run_timestamp_seconds",
                   "sonla_mail_lifecycle_alerts", "sonla_mail_last_login_timestamp_seconds"):
        assert absent not in text
    assert "sonla_mail_last_login_failures_total 0" in text and "sonla_mail_healthy 1" in text
    lifecycle_host = healthy_facts(lifecycle_at=None, present=frozenset({"queue", "lifecycle", "last_login"}))
    assert failed(lifecycle_host) == ["lifecycle run"]
    assert "last-login hook" not in verdicts(lifecycle_host)


def test_gather_leaves_out_what_the_configuration_does_not_name(tmp_path):
    """Issue 15: an empty path is a check this host does not have; nothing is read for it."""
    facts = _health.gather({"services": [], "disks": [str(tmp_path)], "queue_directory": "", "database": "",
                            "lifecycle_alert_file": "", "hook_failure_file": str(tmp_path / "none")}, "store1")
    assert facts.present == {"login_hook"}
    assert [check.name for check in _health.evaluate(facts, DEFAULTS)] == [f"disk {tmp_path}", "last backup",
                                                                           "last-login hook"]


def test_the_operators_mail_names_the_failed_checks():
    checks = _health.evaluate(healthy_facts(services={"dovecot": False}), _health.Thresholds())
    message = _health.operators_mail("mail.sonla.gov.vn", checks, "no-reply@sonla.gov.vn", "ops@sonla.gov.vn")
    assert message["Subject"].endswith("Health check failed on mail.sonla.gov.vn: service dovecot")
    assert "FAIL  service dovecot" in message.get_content()


def test_the_queue_counts_the_files_of_every_queue(tmp_path):
    for name, count in (("deferred/A", 2), ("active", 1), ("corrupt", 5)):
        folder = tmp_path / name
        folder.mkdir(parents=True)
        for number in range(count):
            (folder / str(number)).write_text("")
    assert _health.queue_size(str(tmp_path)) == 3
    assert _health.queue_size(str(tmp_path / "missing")) is None


def test_gather_reads_the_state_files(tmp_path):
    """The lifecycle's alert file (its time is the last run), the hook's counter, the newest login."""
    from ansible_collections.sonla.mail.plugins.module_utils import _userdb

    database = str(tmp_path / "users.sqlite")
    connection = _userdb.connect(database)
    connection.close()
    alerts = tmp_path / "lifecycle.alerts"
    alerts.write_text("1\n2026-12-01 02:30:00\n3 idle suspensions (R8.2a) due\n")
    failures = tmp_path / "failures"
    failures.write_text("7\n")
    config = {"services": [{"name": "test", "process": "no-such-process"}], "certificates": [str(tmp_path / "none")],
              "disks": [str(tmp_path)], "queue_directory": str(tmp_path), "database": database,
              "lifecycle_alert_file": str(alerts), "hook_failure_file": str(failures),
              "backup_state_file": str(tmp_path / "backup.state")}
    facts = _health.gather(config, "h")
    assert facts.services == {"test": False} and facts.certificates == {str(tmp_path / "none"): None}
    assert facts.lifecycle_alerts == ["3 idle suspensions (R8.2a) due"] and facts.lifecycle_at is not None
    assert facts.hook_failures == 7 and facts.hook_failure_at is not None
    assert facts.backup is None and facts.last_login_at is None and facts.queue == 0
    assert 0 < facts.disks[str(tmp_path)] < 100


def test_a_zombie_does_not_count_as_a_running_service(tmp_path):
    """A stopped daemon not yet reaped by its parent (state Z) is not running; a name with spaces or ')' is read whole."""
    for pid, stat in (("10", "10 (dovecot) Z 1 10"), ("11", "11 (master) S 1 11"), ("12", "12 (odd) name) R 1 12")):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "stat").write_text(stat)
    (tmp_path / "self").mkdir()
    assert _health.running_processes(str(tmp_path)) == {"master", "odd) name"}
