# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of the mail system on restic, and deletion that reaches them (docs/backup.md, R10.2c, R7.2).

Stdlib only: the ``sonla-mail-backup`` command on the mail server imports this file. Restic does the
archive (encrypted, deduplicated, incremental); this module decides what goes in, in what order, and
what a failure means:

- the user database (and the webmail's) is copied with SQLite's online backup API, never a bare copy; on several
  hosts the db host dumps the shared PostgreSQL database with ``pg_dump`` (issue 15), and has no mail of its own;
- the mail storage goes in whole, with Dovecot's index files (sdbox keeps the flags there);
- a repository that is missing or refuses the passphrase stops the run before anything is written or
  forgotten, with a plain message;
- a mailbox removed (``removed``) or revoked (``revoked``) in ``mailbox_event`` is excluded from every
  snapshot with ``restic rewrite --forget`` and the data pruned with ``prune --max-unused 0``; the old
  copies of the user database, which still hold its row, go from the snapshots older than the deletion.
  A ``backup_purged`` event records it (R7.2), and the agencies' notice names it (R7.3): who each mailbox
  belonged to is read from the copy of the user database in the newest snapshot taken before its deletion.

On several hosts (issue 15) every host that backs up (the db host, each mailstore) purges its own repository and
records its own ``backup_purged`` event (``host=<name>`` in its detail). The agencies' notice goes out once, from the
host whose purge is the last of ``hosts``: only then is the mailbox gone from every backup.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage

from ansible_collections.sonla.mail.plugins.module_utils import _notices, _userdb

DELETION_ACTIONS = ("removed", "revoked")
PURGED_ACTION = "backup_purged"
PURGE_COMPLETE = "complete"  # in the detail of the purge that made a mailbox gone from every host's backups
PURGE_LOCK = 127  # PostgreSQL advisory lock: one host at a time decides which purge completes a deletion
TAG = "sonla-mail"
RESTORE_PREFIX = ".restore-"  # restores in progress, in the mail root: never backed up

# restic 0.17+ exit codes; restic 0.14-0.16 exit 1 and say it on stderr (matched below).
EXIT_NO_REPOSITORY = 10
EXIT_LOCKED = 11
EXIT_WRONG_PASSWORD = 12
_NO_REPOSITORY_TEXT = ("Is there a repository at the following location?", "repository does not exist",
                       "unable to open config file")
_WRONG_PASSWORD_TEXT = ("wrong password or no key found",)


class BackupError(Exception):
    """A failure with a message an operator can act on."""


@dataclass
class Config:
    repository: str
    password_file: str
    mail_root: str = "/var/vmail"
    databases: list = field(default_factory=lambda: ["/var/lib/sonla-mail/users.sqlite"])
    config_paths: list = field(default_factory=list)
    excludes: list = field(default_factory=list)
    staging_dir: str = "/var/backups/sonla-mail"
    environment: dict = field(default_factory=dict)
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 6
    max_age_hours: int = 26
    notify: list = field(default_factory=list)
    state_file: str = "/var/lib/sonla-mail/backup.state"
    restic: str = "restic"
    user_database: str = "/var/lib/sonla-mail/users.sqlite"
    vmail_user: str = "vmail"
    # Who hears of a purge (R7.3): {organizations, department, domain, webmail_url, notify}; empty: nobody.
    notices: dict = field(default_factory=dict)
    # Several hosts (issue 15): this host's name in the purge events, and every host that backs up. Empty: one host.
    host: str = ""
    hosts: list = field(default_factory=list)
    # The Postfix that takes the notices and the failure mail: the host's own, or an MX's on a host without one.
    smtp_host: str = _notices.SMTP_HOST
    smtp_port: int = _notices.SMTP_PORT

    @classmethod
    def load(cls, path: str) -> Config:
        with open(path, encoding="utf-8") as stream:
            values = json.load(stream)
        environment_file = values.pop("environment_file", None)
        config = cls(**values)
        if environment_file and os.path.exists(environment_file):
            with open(environment_file, encoding="utf-8") as stream:
                config.environment.update(json.load(stream))
        return config

    @property
    def database_dir(self) -> str:
        """Where the online copies of the databases are written before restic reads them."""
        return os.path.join(self.staging_dir, "db")

    def database_copy(self, database: str) -> str:
        """Where a database's copy is staged: the SQLite file's name, or ``<dbname>.pgdump`` for PostgreSQL."""
        if _userdb.is_postgres(database):
            return os.path.join(self.database_dir, f"{urllib.parse.urlsplit(database).path.strip('/') or 'postgres'}.pgdump")
        return os.path.join(self.database_dir, os.path.basename(database))


# --- restic ----------------------------------------------------------------------------------------


def restic_env(config: Config, base: dict | None = None) -> dict:
    """The environment of every restic call: the passphrase by file, never on a command line."""
    env = dict(os.environ if base is None else base)
    env.update({key: str(value) for key, value in config.environment.items()})
    env["RESTIC_REPOSITORY"] = config.repository
    env["RESTIC_PASSWORD_FILE"] = config.password_file
    env.pop("RESTIC_PASSWORD", None)
    env.pop("RESTIC_PASSWORD_COMMAND", None)
    return env


def classify_failure(returncode: int, stderr: str) -> str | None:
    """'missing', 'password', 'locked' or None for any other failure."""
    if returncode == EXIT_NO_REPOSITORY or any(text in stderr for text in _NO_REPOSITORY_TEXT):
        return "missing"
    if returncode == EXIT_WRONG_PASSWORD or any(text in stderr for text in _WRONG_PASSWORD_TEXT):
        return "password"
    if returncode == EXIT_LOCKED:
        return "locked"
    return None


FAILURE_MESSAGES = {
    "missing": "no restic repository at {repository}: check the path or the remote, and that the disk is mounted. "
               "Nothing was written or deleted. A new repository is made only by the converge "
               "(sonla-mail-backup init), never by the daily job.",
    "password": "the repository at {repository} refuses the passphrase in {password_file}. "
                "Nothing was written or deleted.",
    "locked": "the repository at {repository} is locked by another restic run; try again later "
              "(restic unlock only if no other run is alive).",
}


def explain(returncode: int, stderr: str, config: Config, what: str) -> str:
    kind = classify_failure(returncode, stderr)
    if kind:
        return FAILURE_MESSAGES[kind].format(repository=config.repository, password_file=config.password_file)
    tail = stderr.strip().splitlines()[-3:]
    return f"restic {what} failed (exit {returncode}): {' / '.join(tail)}"


class Restic:
    """Runs restic with the repository's environment; every failure becomes a BackupError."""

    def __init__(self, config: Config, runner=subprocess.run):
        self.config = config
        self.runner = runner

    def run(self, *args: str, what: str | None = None, json_output: bool = False):
        argv = [self.config.restic, *args]
        if json_output:
            argv.append("--json")
        result = self.runner(argv, env=restic_env(self.config), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BackupError(explain(result.returncode, result.stderr, self.config, what or args[0]))
        if json_output:
            return json.loads(result.stdout or "null")
        return result.stdout

    def check_access(self) -> None:
        """Fails with a plain message when the repository is missing or the passphrase is wrong."""
        self.run("cat", "config", what="access")

    def snapshots(self) -> list[dict]:
        return self.run("snapshots", "--tag", TAG, json_output=True) or []

    def version(self) -> tuple[int, ...]:
        text = self.run("version", what="version")
        found = re.search(r"restic (\d+)\.(\d+)\.(\d+)", text)
        return tuple(int(part) for part in found.groups()) if found else (0, 0, 0)


# --- what a backup takes ---------------------------------------------------------------------------


def copy_database(source: str, target: str) -> None:
    """A consistent copy of a live SQLite database (WAL included) with the online backup API."""
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    temporary = f"{target}.tmp"
    if os.path.exists(temporary):
        os.remove(temporary)
    source_connection = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=60)
    target_connection = sqlite3.connect(temporary)
    try:
        source_connection.backup(target_connection)
        check = target_connection.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the copy of {source} fails its integrity check: {check}")
    finally:
        target_connection.close()
        source_connection.close()
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)


def dump_postgres(uri: str, target: str) -> None:
    """A consistent dump of a live PostgreSQL database (one snapshot of it, pg_dump's custom format), as the
    database's owner: every row, hashes and events included, like the SQLite copy."""
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    temporary = f"{target}.tmp"
    result = subprocess.run(["pg_dump", "--format=custom", "--file", temporary, "--dbname", uri],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"pg_dump of the user database failed (exit {result.returncode}): {result.stderr.strip()}")
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)


def backup_paths(config: Config) -> list[str]:
    """The mail (none on a db host of several, issue 15), the databases' copies (none on a mailstore of several) and
    the configuration."""
    paths = ([config.mail_root] if config.mail_root else []) + ([config.database_dir] if config.databases else [])
    return paths + [path for path in config.config_paths if os.path.exists(path)]


def backup_args(config: Config, paths: list[str]) -> list[str]:
    args = ["backup", "--json", "--tag", TAG, "--host", os.uname().nodename]
    if config.mail_root:
        args += ["--exclude", os.path.join(config.mail_root, RESTORE_PREFIX + "*")]
    for pattern in config.excludes:
        args += ["--exclude", pattern]
    return args + paths


def forget_args(config: Config) -> list[str]:
    return ["forget", "--tag", TAG, "--group-by", "host,tags", "--keep-daily", str(config.keep_daily),
            "--keep-weekly", str(config.keep_weekly), "--keep-monthly", str(config.keep_monthly)]


# --- deletion reaches the backups (R7.2) -----------------------------------------------------------


def mail_dir(mail_root: str, address: str) -> str:
    """``<mail_root>/<domain>/<local part>``: where the mailbox lives, as restic records the path."""
    local_part, domain = address.split("@", 1)
    if not local_part or not domain or "/" in address or address.startswith(".") or ".." in address:
        raise BackupError(f"not a mailbox address: {address!r}")
    return os.path.join(mail_root, domain, local_part)


def purge_host(detail: str | None) -> str:
    """The host a purge event names (``host=<name>``); empty for one host's purge."""
    found = re.search(r"(?:^| )host=(\S+)", detail or "")
    return found.group(1) if found else ""


def pending_deletions(events: list[dict], host: str = "") -> dict[str, str]:
    """Addresses removed or revoked and not purged from ``host``'s backups since, with the latest deletion time.

    ``events`` are mailbox_event rows in id order (dicts with address, action, at, detail). A purge that names no
    host (one host's, or one made before the system grew to several) counts for every host.
    """
    pending: dict[str, str] = {}
    for event in events:
        if event["action"] in DELETION_ACTIONS:
            pending[event["address"]] = event["at"]
        elif event["action"] == PURGED_ACTION and purge_host(event.get("detail")) in ("", host):
            pending.pop(event["address"], None)
    return pending


def completed_purges(events: list[dict], host: str, hosts: list[str], addresses: list[str]) -> list[str]:
    """Which of ``addresses``, about to be purged from ``host``'s backups, are then gone from every host's: each of
    ``hosts`` has purged them since their latest deletion, and no earlier purge completed them already (a host added
    later does not send the notice again). With one host, all of them."""
    purged_by: dict[str, set] = {address: set() for address in addresses}
    completed: set = set()
    for event in events:
        address = event["address"]
        if address not in purged_by:
            continue
        if event["action"] in DELETION_ACTIONS:
            purged_by[address].clear()
            completed.discard(address)
        elif event["action"] == PURGED_ACTION:
            purged_by[address].add(purge_host(event.get("detail")))
            if PURGE_COMPLETE in (event.get("detail") or "").split():
                completed.add(address)
    return sorted(address for address, hosts_done in purged_by.items()
                  if address not in completed and set(hosts) <= hosts_done | {host})


def parse_time(text: str) -> datetime:
    """restic's RFC 3339 times (nanoseconds, offset) and the database's UTC ``YYYY-MM-DD HH:MM:SS``."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text):
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text)


def rewrite_plan(snapshots: list[dict], pending: dict[str, str], config: Config,
                 keep_databases: frozenset = frozenset()) -> list[tuple[list[str], list[str]]]:
    """Groups of (exclude patterns, snapshot ids) for ``restic rewrite``.

    Every snapshot loses the mail folders of the pending addresses. A snapshot taken before a deletion
    also loses its copies of the databases, which still hold the account's row and password hash;
    ``keep_databases`` are the ids of snapshots taken after the deletion was committed (this run's).
    """
    if not pending:
        return []
    folders = sorted(mail_dir(config.mail_root, address) for address in pending) if config.mail_root else []
    latest_deletion = max(parse_time(at) for at in pending.values())
    copies = sorted(config.database_copy(database) for database in config.databases)
    groups: dict[tuple, list[str]] = {}
    for snapshot in snapshots:
        excludes = list(folders)
        if snapshot["id"] not in keep_databases and parse_time(snapshot["time"]) <= latest_deletion:
            excludes += copies
        if excludes:  # a db host's snapshot taken after the deletion holds nothing of it (issue 15)
            groups.setdefault(tuple(excludes), []).append(snapshot["id"])
    return [(list(excludes), ids) for excludes, ids in groups.items()]


def rewrite_args(excludes: list[str], snapshot_ids: list[str]) -> list[str]:
    args = ["rewrite", "--forget"]
    for pattern in excludes:
        args += ["--exclude", pattern]
    return args + snapshot_ids


PRUNE_ALL = ["prune", "--max-unused", "0"]  # repack every pack with a deleted blob: the data goes


def store_mailboxes(database: str, host: str) -> list[str]:
    """The mailboxes the user database pins to the mailstore ``host`` (issue 15): what its restore brings back."""
    connection = _userdb.connect(database, upgrade=False)
    try:
        return [row["address"] for row in connection.execute(
            "SELECT address FROM mailbox WHERE host = ? ORDER BY address", (host,))]
    finally:
        connection.close()


def read_deletion_events(database: str) -> list[dict]:
    """The deletions and purges of ``mailbox_event``, oldest first: from the SQLite file, or on several hosts from
    PostgreSQL (issue 15)."""
    connection = _userdb.connect(database, upgrade=False)
    try:
        return read_deletion_events_on(connection)
    finally:
        connection.close()


def read_deletion_events_on(connection) -> list[dict]:
    marks = ", ".join("?" * (len(DELETION_ACTIONS) + 1))
    rows = connection.execute(
        f"SELECT address, action, at, detail FROM mailbox_event WHERE action IN ({marks}) ORDER BY id",
        (*DELETION_ACTIONS, PURGED_ACTION))
    return [dict(row) for row in rows]


def deleted_mailboxes(config: Config, restic: Restic, snapshots: list[dict], pending: dict[str, str],
                      keep_databases: frozenset = frozenset()) -> list[dict]:
    """Who the pending addresses belonged to, for the agencies' notice (R7.3): address, organization,
    display_name (the row in the database copy of the newest snapshot older than the deletion, the copy the
    purge is about to remove; not this run's, taken after it) and deleted_at. Organization and name stay
    unknown when no snapshot has the row."""
    mailboxes = {address: {"address": address, "organization": None, "display_name": "", "deleted_at": at}
                 for address, at in pending.items()}
    if _userdb.is_postgres(config.user_database):
        # Several hosts (issue 15): the dumps cannot be read here; the deletion's event keeps the agency.
        for address, organization in deleted_organizations(config.user_database, list(pending)).items():
            mailboxes[address]["organization"] = organization
        return [mailboxes[address] for address in sorted(mailboxes)]
    by_snapshot: dict[str, list[str]] = {}
    for address, at in pending.items():
        older = last_good([snapshot for snapshot in snapshots if snapshot["id"] not in keep_databases
                           and parse_time(snapshot["time"]) <= parse_time(at)])
        if older:
            by_snapshot.setdefault(older["id"], []).append(address)
    copy = config.database_copy(config.user_database)
    for snapshot_id, addresses in by_snapshot.items():
        os.makedirs(config.staging_dir, mode=0o700, exist_ok=True)
        work = tempfile.mkdtemp(prefix="purged-", dir=config.staging_dir)
        try:
            restore_tree(restic, snapshot_id, [copy], work)
            connection = sqlite3.connect(f"file:{os.path.join(work, copy.lstrip('/'))}?mode=ro", uri=True)
            try:
                marks = ", ".join("?" * len(addresses))
                for address, organization, name in connection.execute(
                        f"SELECT address, organization, display_name FROM mailbox WHERE address IN ({marks})", addresses):
                    mailboxes[address].update(organization=organization, display_name=name)
            finally:
                connection.close()
        except (BackupError, OSError, sqlite3.Error):
            pass  # the notice then lists the address for the Department, under an unknown agency
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return [mailboxes[address] for address in sorted(mailboxes)]


def deleted_organizations(database: str, addresses: list[str]) -> dict[str, str]:
    """The organization each address had when it was removed or revoked, from its latest deletion event."""
    connection = _userdb.connect(database, upgrade=False)
    try:
        marks = ", ".join("?" * len(addresses))
        rows = connection.execute(
            f"SELECT address, organization FROM mailbox_event WHERE address IN ({marks}) AND action IN (?, ?)"
            " AND organization IS NOT NULL ORDER BY id", (*addresses, *DELETION_ACTIONS))
        return {row["address"]: row["organization"] for row in rows}
    finally:
        connection.close()


def purge_notices(config: Config, purged_mailboxes: list[dict], now: str) -> list:
    """The result notice of a purge (R7.3): to each agency the mailboxes of its own that are gone from every
    backup, and the Department's summary. None without the agencies or when told not to notify."""
    values = config.notices
    if not purged_mailboxes or not values or not values.get("notify", True):
        return []
    directory = _notices.Directory(values.get("organizations"), values.get("department"))
    return _notices.render(_notices.backup_purge_items(purged_mailboxes, directory), directory, now, "backup",
                           values.get("domain") or "sonla.gov.vn", webmail_url=values.get("webmail_url"))


def notify_purged(config: Config, purge: dict, now: str, send=_notices.send) -> dict:
    """Sends the purge's notices; what was sent and what failed, for the run's JSON line."""
    messages = purge_notices(config, purge["purged_mailboxes"], now)
    return {"notices": _notices.preview(messages),
            "notice_errors": send(messages, config.smtp_host, config.smtp_port) if messages else []}


def record_purged(config: Config, addresses: list[str], detail: str) -> list[str]:
    """Record this host's purge of ``addresses`` (R7.2); returns those it makes gone from every host's backups, whose
    notice this host sends (R7.3). On several hosts one host at a time decides, so a deletion completes once."""
    connection = _userdb.connect(config.user_database, upgrade=False)
    try:
        with _userdb.transaction(connection):
            if _userdb.is_postgres(config.user_database):
                connection.execute("SELECT pg_advisory_xact_lock(?)", (PURGE_LOCK,))
            completed = completed_purges(read_deletion_events_on(connection), config.host, config.hosts, addresses)
            now = _userdb.utc_now()
            prefix = f"host={config.host} " if config.host else ""
            _userdb.record_events(connection, [
                (now, address, PURGED_ACTION, _userdb.deletion_request(connection, address),
                 prefix + detail + (f" {PURGE_COMPLETE}" if config.hosts and address in completed else ""))
                for address in addresses])
        return completed
    finally:
        connection.close()


# --- age of the last good backup -------------------------------------------------------------------


def last_good(snapshots: list[dict]) -> dict | None:
    return max(snapshots, key=lambda snapshot: parse_time(snapshot["time"]), default=None)


def age_hours(snapshot_time: str, now: datetime | None = None) -> float:
    now = now or datetime.now(UTC)
    return (now - parse_time(snapshot_time)).total_seconds() / 3600


def status(snapshots: list[dict], max_age_hours: int, now: datetime | None = None) -> dict:
    newest = last_good(snapshots)
    if newest is None:
        return {"ok": False, "snapshots": 0, "msg": "no backup in the repository"}
    age = age_hours(newest["time"], now)
    result = {"ok": age <= max_age_hours, "snapshots": len(snapshots), "last": newest["time"],
              "last_id": newest.get("short_id", newest["id"][:8]), "age_hours": round(age, 1),
              "max_age_hours": max_age_hours}
    result["msg"] = (f"last good backup {result['last_id']} at {newest['time']}, {age:.1f} h ago"
                     + ("" if result["ok"] else f": older than {max_age_hours} h"))
    return result


def backup_age(state_file: str, now: datetime | None = None) -> dict:
    """The age of the last good backup as the job's state file records it, for the lifecycle's daily log: no
    repository access, so it needs neither the passphrase nor the network. ``ok`` false when older than the
    job's ``max_age_hours``, when the last run failed, or when no good backup is recorded."""
    try:
        with open(state_file, encoding="utf-8") as stream:
            state = json.load(stream)
    except (OSError, ValueError):
        return {"ok": False, "msg": f"no backup recorded ({state_file} unreadable)"}
    last = state.get("last_good_at")
    if not last:
        return {"ok": False, "last_run_ok": bool(state.get("ok")), "msg": "no good backup recorded"}
    age = age_hours(last, now)
    max_age = int(state.get("max_age_hours") or Config.max_age_hours)
    result = {"ok": bool(state.get("ok")) and age <= max_age, "last_good_at": last, "age_hours": round(age, 1),
              "last_run_ok": bool(state.get("ok"))}
    result["msg"] = (f"last good backup {age:.1f} h ago ({last} UTC)"
                     + ("" if age <= max_age else f", older than {max_age} h")
                     + ("" if state.get("ok") else f"; the last run failed: {state.get('msg')}"))
    return result


def failure_mail(sender: str, recipients: list[str], host: str, error: str) -> EmailMessage:
    """The operators' mail when a backup fails (plain text, UTF-8), sent by SMTP like the notices."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = f"[sonla-mail] Sao lưu thất bại / Backup failed on {host}"
    message.set_content(f"Sao lưu hệ thống thư trên {host} thất bại.\nThe mail system's backup on {host} failed.\n\n"
                        f"{error}\n\nsonla-mail-backup status ; docs/backup.md\n")
    return message


# --- the runs ----------------------------------------------------------------------------------------


def write_state(path: str, values: dict) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(values, stream, sort_keys=True)
        stream.write("\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def record_failure(config: Config, error: str) -> None:
    """The state of a failed run: the error, and the last good backup still as it was."""
    try:
        with open(config.state_file, encoding="utf-8") as stream:
            previous = json.load(stream)
    except (OSError, ValueError):
        previous = {}
    kept = {key: previous[key] for key in ("last_good_at", "last_good_snapshot") if key in previous}
    write_state(config.state_file, {"ok": False, "msg": error, "at": _userdb.utc_now(),
                                    "max_age_hours": config.max_age_hours, **kept})


def init_repository(restic: Restic) -> str:
    """Make the repository when there is none (the converge only); 'exists' or 'created'.

    A wrong passphrase on an existing repository is an error, never a reason to make a new one.
    """
    try:
        restic.check_access()
        return "exists"
    except BackupError as error:
        if not str(error).startswith("no restic repository"):
            raise
    restic.run("init", what="init")
    return "created"


def take_snapshot(config: Config, restic: Restic) -> str:
    """Copy the databases online, then one restic snapshot; returns its id."""
    for database in config.databases:
        if _userdb.is_postgres(database):
            dump_postgres(database, config.database_copy(database))
        elif os.path.exists(database):
            copy_database(database, config.database_copy(database))
    messages = restic.run(*backup_args(config, backup_paths(config)), what="backup")
    summary = {}
    for line in messages.splitlines():
        if '"message_type":"summary"' in line.replace(" ", ""):
            summary = json.loads(line)
    return summary.get("snapshot_id", "")


def purge_deleted(config: Config, restic: Restic, keep_databases: frozenset = frozenset()) -> dict:
    """R7.2: exclude every removed or revoked mailbox from every snapshot, then prune its data."""
    pending = pending_deletions(read_deletion_events(config.user_database), config.host)
    if not pending:
        return {"purged": [], "rewritten": 0, "purged_mailboxes": [], "awaiting_hosts": []}
    if restic.version() < (0, 15, 0):
        raise BackupError(
            f"restic {'.'.join(map(str, restic.version()))} has no 'rewrite' (0.15 or later): the mail of "
            f"{', '.join(sorted(pending))} is still in the backups (R7.2). Install restic 0.15+ (docs/backup.md).")
    snapshots = restic.snapshots()
    mailboxes = deleted_mailboxes(config, restic, snapshots, pending, keep_databases)
    plan = rewrite_plan(snapshots, pending, config, keep_databases)
    for excludes, ids in plan:
        restic.run(*rewrite_args(excludes, ids), what="rewrite")
    restic.run(*PRUNE_ALL, what="prune")
    completed = record_purged(config, sorted(pending), f"snapshots={len(snapshots)}")
    return {"purged": sorted(pending), "rewritten": len(snapshots),
            "purged_mailboxes": [mailbox for mailbox in mailboxes if mailbox["address"] in completed],
            "awaiting_hosts": sorted(set(pending) - set(completed))}


def run_backup(config: Config, restic: Restic, prune: bool = False, send=_notices.send) -> dict:
    """The daily job: access check, snapshot, deletions purged, retention. Nothing is forgotten or pruned
    unless the snapshot was written."""
    restic.check_access()
    snapshot_id = take_snapshot(config, restic)
    purge = purge_deleted(config, restic, frozenset({snapshot_id}) if snapshot_id else frozenset())
    now = _userdb.utc_now()
    notices = notify_purged(config, purge, now, send)
    restic.run(*forget_args(config), what="forget")
    if prune and not purge["purged"]:
        restic.run("prune", what="prune")
    result = {"snapshot": snapshot_id, "purged": purge["purged"], "rewritten": purge["rewritten"],
              "awaiting_hosts": purge["awaiting_hosts"], **notices, "at": now}
    write_state(config.state_file, {"ok": True, **result, "last_good_at": now, "last_good_snapshot": snapshot_id,
                                    "max_age_hours": config.max_age_hours})
    return result


# --- restore ----------------------------------------------------------------------------------------


def restore_tree(restic: Restic, snapshot: str, includes: list[str], target: str) -> None:
    args = ["restore", snapshot, "--target", target]
    for path in includes:
        args += ["--include", path]
    restic.run(*args, what="restore")


def restore_database(copy: str, live: str) -> None:
    """Put a restored copy into the live database with the online backup API (readers may stay open)."""
    if not os.path.exists(copy):
        raise BackupError(f"the snapshot has no copy of {live}")
    source = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    target = sqlite3.connect(live, timeout=60)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def side_folder_name(snapshot_time: str) -> str:
    return f"Khôi phục {parse_time(snapshot_time).astimezone(UTC).strftime('%Y-%m-%d %H%M')}"
