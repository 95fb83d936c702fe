# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health of one mail server, in one table and in Prometheus' text format (docs/monitoring.md, R10.2a).

Stdlib only: the ``sonla-mail-health`` command on the mail server imports this file. ``gather`` reads the
server (processes, certificates, the Postfix queue, disks, the state files of the daily jobs, the user
database); ``evaluate`` turns what it read into checks against the thresholds; ``table``, ``metrics`` and
``operators_mail`` present them. Only ``gather`` touches the system, so the rest is tested without a server.

Each check is OK, FAIL, or "-" (not applicable: backups before the first one is configured). On several hosts
(issue 15) each host checks what it runs: the configuration leaves out the queue of a host without Postfix, the
daily run and the newest login where the lifecycle does not run, the last-login hook where Dovecot holds no mail.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage

from ansible_collections.sonla.mail.plugins.module_utils import _backup, _userdb

QUEUE_DIRECTORIES = ("maildrop", "incoming", "active", "deferred", "hold")
# The checks a host has only when its configuration names what they read (issue 15): check -> configuration key.
HOST_CHECKS = {"queue": "queue_directory", "lifecycle": "lifecycle_alert_file", "last_login": "database",
               "login_hook": "hook_failure_file"}


@dataclass(frozen=True)
class Thresholds:
    """When a check turns red; the alert rules (roles/monitoring/files/prometheus/sonla-mail-rules.yml) use the same."""

    queue_max: int = 200  # messages waiting in Postfix's queue
    disk_max_percent: float = 85.0
    certificate_min_days: int = 21
    lifecycle_max_age_hours: float = 26.0  # the daily job, with two hours of slack
    last_login_max_age_hours: float = 72.0  # a long weekend without any login is already strange
    hook_failure_window_hours: float = 24.0  # a last-login failure this recent is red

    @classmethod
    def from_config(cls, values: dict | None) -> Thresholds:
        values = values or {}
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown health thresholds: {', '.join(unknown)}")
        return cls(**values)


@dataclass
class Facts:
    """What ``gather`` read. A None value means it could not be read (a check then fails, naming why)."""

    host: str
    now: datetime
    services: dict[str, bool] = field(default_factory=dict)  # name: a process is running
    certificates: dict[str, datetime | None] = field(default_factory=dict)  # path: notAfter
    queue: int | None = 0
    disks: dict[str, float | None] = field(default_factory=dict)  # path: percent used
    lifecycle_at: datetime | None = None  # end of the last completed daily run
    lifecycle_alerts: list[str] = field(default_factory=list)
    backup: dict | None = None  # _backup.backup_age; None: no backup configured on this server
    last_login_at: datetime | None = None  # the newest last login in the user database
    hook_failures: int = 0  # logins the last-login hook could not record, ever
    hook_failure_at: datetime | None = None  # the last of them
    present: frozenset = frozenset(HOST_CHECKS)  # which of HOST_CHECKS this host has: all of them on one host


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    ok: bool | None  # None: not applicable
    detail: str = ""

    @property
    def status(self) -> str:
        return "-" if self.ok is None else ("OK" if self.ok else "FAIL")


def _hours(since: datetime, now: datetime) -> float:
    return (now - since).total_seconds() / 3600


def evaluate(facts: Facts, limits: Thresholds) -> list[Check]:
    """The checks of one server, in the table's order."""
    now = facts.now
    checks = [Check(f"service {name}", "running" if up else "stopped", up) for name, up in facts.services.items()]
    for path, not_after in facts.certificates.items():
        if not_after is None:
            checks.append(Check(f"certificate {path}", "unreadable", False))
            continue
        days = (not_after - now).days
        checks.append(Check(f"certificate {path}", f"{days} days left", days >= limits.certificate_min_days,
                            f"under {limits.certificate_min_days} days" if days < limits.certificate_min_days else ""))
    if "queue" in facts.present:
        checks.append(_queue_check(facts, limits))
    for path, used in facts.disks.items():
        if used is None:
            checks.append(Check(f"disk {path}", "unreadable", False))
            continue
        checks.append(Check(f"disk {path}", f"{used:.0f}% used", used <= limits.disk_max_percent,
                            f"above {limits.disk_max_percent:g}%" if used > limits.disk_max_percent else ""))
    if "lifecycle" in facts.present:
        checks.append(_lifecycle_check(facts, limits))
    checks.append(_backup_check(facts))
    checks.extend(_last_login_checks(facts, limits))
    return checks


def _queue_check(facts: Facts, limits: Thresholds) -> Check:
    if facts.queue is None:
        return Check("mail queue", "unreadable", False)
    return Check("mail queue", f"{facts.queue} messages", facts.queue <= limits.queue_max,
                 f"above {limits.queue_max}" if facts.queue > limits.queue_max else "")


def _lifecycle_check(facts: Facts, limits: Thresholds) -> Check:
    if facts.lifecycle_at is None:
        return Check("lifecycle run", "never", False, "no completed daily run recorded (R8.1, R8.2a)")
    age = _hours(facts.lifecycle_at, facts.now)
    value = f"{age:.1f} h ago"
    if age > limits.lifecycle_max_age_hours:
        return Check("lifecycle run", value, False, f"older than {limits.lifecycle_max_age_hours:g} h")
    if facts.lifecycle_alerts:
        return Check("lifecycle run", value, False,
                     f"{len(facts.lifecycle_alerts)} alerts: {facts.lifecycle_alerts[0]}")
    return Check("lifecycle run", value, True)


def _backup_check(facts: Facts) -> Check:
    if facts.backup is None:
        return Check("last backup", "not configured", None)
    value = f"{facts.backup['age_hours']} h ago" if "age_hours" in facts.backup else "none"
    return Check("last backup", value, bool(facts.backup.get("ok")), "" if facts.backup.get("ok") else facts.backup["msg"])


def _last_login_checks(facts: Facts, limits: Thresholds) -> list[Check]:
    """R8.2a: a broken last-login hook would make everyone look idle; two views of it: the newest login in the user
    database, and the hook's own failures (on several hosts, the lifecycle's host and each mailstore)."""
    checks = []
    if "last_login" in facts.present:
        checks.append(_newest_login_check(facts, limits))
    if "login_hook" in facts.present:
        recent = (facts.hook_failure_at is not None and facts.hook_failures > 0
                  and _hours(facts.hook_failure_at, facts.now) <= limits.hook_failure_window_hours)
        value = f"{facts.hook_failures} failed" + (f", last {facts.hook_failure_at:%Y-%m-%d %H:%M} UTC"
                                                   if facts.hook_failures and facts.hook_failure_at else "")
        checks.append(Check("last-login hook", value, not recent,
                            f"failed in the last {limits.hook_failure_window_hours:g} h (Dovecot's log)" if recent else ""))
    return checks


def _newest_login_check(facts: Facts, limits: Thresholds) -> Check:
    if facts.last_login_at is None:
        return Check("last login recorded", "never", False, "no login recorded in the user database")
    age = _hours(facts.last_login_at, facts.now)
    return Check("last login recorded", f"{age:.1f} h ago", age <= limits.last_login_max_age_hours,
                 f"older than {limits.last_login_max_age_hours:g} h" if age > limits.last_login_max_age_hours else "")


def healthy(checks: list[Check]) -> bool:
    return all(check.ok is not False for check in checks)


def table(host: str, checks: list[Check]) -> str:
    """One plain-text table per host, readable in a terminal and in a mail."""
    width = max(len(check.name) for check in checks)
    value_width = max(len(check.value) for check in checks)
    lines = [f"{host}: {'OK' if healthy(checks) else 'FAIL'}"]
    for check in checks:
        line = f"  {check.status:<4}  {check.name:<{width}}  {check.value:<{value_width}}  {check.detail}"
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _timestamp(moment: datetime | None) -> str:
    return "0" if moment is None else f"{moment.timestamp():.0f}"


def metrics(facts: Facts, checks: list[Check]) -> str:
    """Prometheus' text format, for node-exporter's textfile collector. Times are Unix seconds, 0 for never;
    the alert rules compare them with time()."""
    out: list[str] = []

    def family(name: str, kind: str, text: str, samples: list[tuple[str, str]]) -> None:
        out.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])
        out.extend(f"{name}{labels} {value}" for labels, value in samples)

    family("sonla_mail_service_up", "gauge", "1 when a process of the service runs.",
           [(f'{{service="{_label(name)}"}}', str(int(up))) for name, up in facts.services.items()])
    family("sonla_mail_certificate_expiry_timestamp_seconds", "gauge", "When the certificate expires (0: unreadable).",
           [(f'{{path="{_label(path)}"}}', _timestamp(end)) for path, end in facts.certificates.items()])
    if "queue" in facts.present:
        family("sonla_mail_queue_messages", "gauge", "Messages in Postfix's queue (-1: unreadable).",
               [("", str(-1 if facts.queue is None else facts.queue))])
    family("sonla_mail_disk_used_ratio", "gauge", "Share of the file system in use (-1: unreadable).",
           [(f'{{path="{_label(path)}"}}', "-1" if used is None else f"{used / 100:.4f}")
            for path, used in facts.disks.items()])
    if "lifecycle" in facts.present:
        family("sonla_mail_lifecycle_last_run_timestamp_seconds", "gauge",
               "End of the last completed daily lifecycle run.", [("", _timestamp(facts.lifecycle_at))])
        family("sonla_mail_lifecycle_alerts", "gauge", "Alerts of the last lifecycle run (a cap hit, bad data).",
               [("", str(len(facts.lifecycle_alerts)))])
    if facts.backup is not None:
        last_good = facts.backup.get("last_good_at")
        family("sonla_mail_backup_last_good_timestamp_seconds", "gauge", "Time of the last good backup (0: none).",
               [("", _timestamp(_backup.parse_time(last_good) if last_good else None))])
    if "last_login" in facts.present:
        family("sonla_mail_last_login_timestamp_seconds", "gauge", "The newest last login in the user database.",
               [("", _timestamp(facts.last_login_at))])
    if "login_hook" in facts.present:
        family("sonla_mail_last_login_failures_total", "counter",
               "Logins the last-login hook could not record (R8.2a).", [("", str(facts.hook_failures))])
    family("sonla_mail_healthy", "gauge", "1 when every check of sonla-mail-health passes.",
           [("", str(int(healthy(checks))))])
    return "\n".join(out) + "\n"


def operators_mail(host: str, checks: list[Check], sender: str, recipient: str) -> EmailMessage:
    """The operators' mail when a check fails (plain text, UTF-8)."""
    failed = [check for check in checks if check.ok is False]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = (f"[sonla-mail] Kiểm tra sức khỏe không đạt / Health check failed on {host}: "
                          + ", ".join(check.name for check in failed))
    message.set_content(f"Máy chủ thư {host} có vấn đề cần xử lý.\nThe mail server {host} needs attention.\n\n"
                        + table(host, checks))
    return message


# --- reading the server (not unit-tested: molecule/lifecycle runs it) --------------------------------------

def running_processes(proc: str = "/proc") -> set[str]:
    """The names of the live processes. A zombie (state Z) has ended: a stopped daemon whose parent has not
    reaped it yet must not count as running."""
    names = set()
    for entry in os.listdir(proc):
        if entry.isdigit():
            try:
                with open(os.path.join(proc, entry, "stat"), encoding="utf-8") as stream:
                    stat = stream.read()
            except OSError:
                continue  # the process ended meanwhile
            name, _, rest = stat.partition(" (")[2].rpartition(") ")
            if rest[:1] not in ("Z", "X"):
                names.add(name)
    return names


def certificate_end(path: str) -> datetime | None:
    try:
        result = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", path],
                                capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    text = result.stdout.strip().removeprefix("notAfter=")
    return datetime.strptime(text, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)


def queue_size(spool: str) -> int | None:
    if not os.path.isdir(spool):
        return None
    return sum(len(files) for name in QUEUE_DIRECTORIES for _, _, files in os.walk(os.path.join(spool, name)))


def disk_used_percent(path: str) -> float | None:
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    used = stat.f_blocks - stat.f_bfree
    usable = used + stat.f_bavail
    return 100.0 * used / usable if usable else 0.0


def _mtime(path: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    except OSError:
        return None


def newest_login(database: str) -> datetime | None:
    """From the SQLite file, read-only, or on several hosts from PostgreSQL (issue 15)."""
    try:
        if _userdb.is_postgres(database):
            connection = _userdb.connect(database, upgrade=False)
        else:
            connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        try:
            (newest,) = connection.execute("SELECT max(last_login_at) FROM mailbox").fetchone()
        finally:
            connection.close()
    except _userdb.DatabaseError:
        return None  # the check fails as "never"
    return _backup.parse_time(newest) if newest else None


def gather(config: dict, host: str, now: datetime | None = None) -> Facts:
    """Read the server as ``config`` (the role's health.json) describes it."""
    facts = Facts(host=host, now=now or datetime.now(UTC),
                  present=frozenset(check for check, key in HOST_CHECKS.items() if config.get(key)))
    processes = running_processes()
    facts.services = {service["name"]: service["process"] in processes for service in config.get("services", [])}
    facts.certificates = {path: certificate_end(path) for path in config.get("certificates", [])}
    facts.queue = queue_size(config["queue_directory"]) if "queue" in facts.present else None
    facts.disks = {path: disk_used_percent(path) for path in config.get("disks", ["/"])}
    alert_file = config.get("lifecycle_alert_file", "")
    facts.lifecycle_at = _mtime(alert_file)
    if facts.lifecycle_at is not None:
        with open(alert_file, encoding="utf-8") as stream:
            lines = stream.read().splitlines()
        facts.lifecycle_alerts = lines[2:] if lines and lines[0] != "0" else []
    state_file = config.get("backup_state_file")
    facts.backup = _backup.backup_age(state_file, facts.now) if state_file and os.path.exists(state_file) else None
    facts.last_login_at = newest_login(config["database"]) if "last_login" in facts.present else None
    failure_file = config.get("hook_failure_file", "")
    try:
        with open(failure_file, encoding="utf-8") as stream:
            text = stream.read().strip()
        facts.hook_failures = int(text) if text.isdigit() else 0
        facts.hook_failure_at = _mtime(failure_file) if facts.hook_failures else None
    except OSError:
        pass  # not installed yet: no failure counted
    return facts
