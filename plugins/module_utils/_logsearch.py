# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The log search of the mail server (docs/logs.md, R9.1, R7.2).

Stdlib only: the ``sonla-mail-logsearch`` command on the mail server imports this file. It reads the log
files the roles keep (plain, rotated and gzip-compressed, as logrotate leaves them), keeps what R9.1 asks
for in one SQLite index, and answers for an address, a client IP, a message-id or a queue id.

Why SQLite with B-tree indexes (not FTS5, not DuckDB): every question is an exact key (an address, an IP,
an id) and a time range, which an ordinary index answers in a few page reads; FTS5 would split addresses
into tokens and rank text nobody searches; DuckDB is not in Debian. SQLite is in Python's standard
library and in Debian, one file, with transactions, so an interrupted update leaves a consistent index.

The index:
- ``message``: one row per Postfix message (queue id, first time seen, client IP and name, SASL user,
  sender, message-id, size); ``recipient``: one row per recipient with its latest status, DSN and error
  text; ``delivery``: Dovecot's delivery of a message-id into a mailbox; ``filter``: rspamd's verdict per
  queue id; ``login``: IMAP/POP3 logins and failed logins (Dovecot) and failed SMTP authentications
  (Postfix); ``web``: the webmail's login and send requests and nginx's errors, by client IP.
- ``source_file``: every log file read, by fingerprint (its first line), with how far it was read, so a
  file renamed, compressed or truncated by logrotate is never read twice.
- ``purged``: addresses of mailboxes deleted under R7.2 and when; their rows are deleted from the index
  (the raw logs keep them until their own retention, R9.1) and never indexed again.

Times are stored in UTC as ``YYYY-MM-DD HH:MM:SS``, like the user database's.

API
---
``Config.load(path)``, ``open_index(path)``, ``update(config, now=None) -> dict``
    Index what is new in every source, drop what is older than the retention, apply the R7.2 purges.
``search(connection, kind, value, since, until, user_database=None) -> list[dict]``
    Rows of the same shape (``RECORD_FIELDS``) for messages, logins, web requests, deliveries whose message
    another host logged, and lifecycle events.
``render(rows, fmt) -> str``
    ``table``, ``csv`` or ``json``.
``parse_postfix(line, year_of)``, ``parse_dovecot(...)``, ``parse_rspamd(...)``, ``parse_nginx_access(...)``,
``parse_nginx_error(...)``: one line to one record (a dict with ``kind``) or None.
"""

from __future__ import annotations

import csv
import fcntl
import glob
import gzip
import hashlib
import io
import json
import os
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ansible_collections.sonla.mail.plugins.module_utils import _backup, _userdb

SCHEMA = """
CREATE TABLE IF NOT EXISTS source_file (
    fingerprint TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    path        TEXT NOT NULL,
    offset      INTEGER NOT NULL,
    last_at     TEXT
);
CREATE TABLE IF NOT EXISTS message (
    id          INTEGER PRIMARY KEY,
    queue_id    TEXT,
    at          TEXT NOT NULL,
    service     TEXT,
    client_ip   TEXT,
    client_name TEXT,
    sasl_user   TEXT,
    sender      TEXT,
    message_id  TEXT,
    size        INTEGER,
    open        INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS message_queue ON message (queue_id, open);
CREATE INDEX IF NOT EXISTS message_sender ON message (sender, at);
CREATE INDEX IF NOT EXISTS message_sasl ON message (sasl_user, at);
CREATE INDEX IF NOT EXISTS message_ip ON message (client_ip, at);
CREATE INDEX IF NOT EXISTS message_mid ON message (message_id);
CREATE INDEX IF NOT EXISTS message_at ON message (at);
CREATE TABLE IF NOT EXISTS recipient (
    message     INTEGER NOT NULL,
    address     TEXT NOT NULL,
    at          TEXT NOT NULL,
    status      TEXT NOT NULL,
    dsn         TEXT,
    relay       TEXT,
    detail      TEXT,
    PRIMARY KEY (message, address)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recipient_address ON recipient (address, at);
CREATE TABLE IF NOT EXISTS delivery (
    at          TEXT NOT NULL,
    message_id  TEXT,
    mailbox     TEXT NOT NULL,
    status      TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX IF NOT EXISTS delivery_message ON delivery (message_id, mailbox);
CREATE INDEX IF NOT EXISTS delivery_mailbox ON delivery (mailbox, at);
CREATE INDEX IF NOT EXISTS delivery_at ON delivery (at);
CREATE TABLE IF NOT EXISTS filter (
    at          TEXT NOT NULL,
    queue_id    TEXT,
    message_id  TEXT,
    action      TEXT,
    score       TEXT
);
CREATE INDEX IF NOT EXISTS filter_queue ON filter (queue_id, at);
CREATE INDEX IF NOT EXISTS filter_at ON filter (at);
CREATE TABLE IF NOT EXISTS login (
    at          TEXT NOT NULL,
    service     TEXT NOT NULL,
    user        TEXT,
    client_ip   TEXT,
    result      TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX IF NOT EXISTS login_user ON login (user, at);
CREATE INDEX IF NOT EXISTS login_ip ON login (client_ip, at);
CREATE INDEX IF NOT EXISTS login_at ON login (at);
CREATE TABLE IF NOT EXISTS web (
    at          TEXT NOT NULL,
    client_ip   TEXT NOT NULL,
    request     TEXT,
    status      TEXT,
    detail      TEXT
);
CREATE INDEX IF NOT EXISTS web_ip ON web (client_ip, at);
CREATE INDEX IF NOT EXISTS web_at ON web (at);
CREATE TABLE IF NOT EXISTS purged (
    address     TEXT PRIMARY KEY,
    deleted_at  TEXT NOT NULL
);
"""

SOURCES = ("postfix", "dovecot", "rspamd", "nginx_access", "nginx_error")
KINDS = ("address", "ip", "message_id", "queue_id")
FORMATS = ("table", "csv", "json")
RECORD_FIELDS = ("time", "kind", "from", "to", "client_ip", "size", "status", "detail", "queue_id", "message_id")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
ERASED = "(erased, R7.2)"  # what a deleted mailbox's address becomes in the index
# nginx logs a request when it ends: the webmail's send request is logged after Postfix's client= line of the
# message it made, within this (the SMTP transaction and the copy to Sent), a few seconds' slack before.
WEBMAIL_WINDOW = (timedelta(seconds=-5), timedelta(seconds=120))


class LogSearchError(Exception):
    """A failure with a message an operator can act on."""


# --- time ------------------------------------------------------------------------------------------
_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}


def to_utc(moment: datetime) -> str:
    """``moment`` in UTC as stored in the index; a naive moment is the server's local time, as logs write it."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


class YearOf:
    """The year of a syslog-style time stamp (month and day only), from the file's last change: a line dated
    after that day was written the year before (a December line in a file closed in January)."""

    def __init__(self, reference: datetime):
        self.reference = reference
        self._cache: dict[str, str] = {}

    def utc(self, month: str, day: str, clock: str) -> str:
        key = f"{month} {day} {clock}"
        found = self._cache.get(key)
        if found is None:
            month_number = _MONTHS[month]
            year = self.reference.year
            if (month_number, int(day)) > (self.reference.month, self.reference.day + 1):
                year -= 1
            found = to_utc(datetime(year, month_number, int(day), *map(int, clock.split(":"))))
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = found
        return found


def _iso_utc(text: str) -> str:
    """``2026-12-01T21:33:56.123456+07:00`` (rsyslog) or ``2026-12-01 21:33:56`` (local) in UTC."""
    return to_utc(datetime.fromisoformat(text))


# --- parsing ---------------------------------------------------------------------------------------
# Postfix's own log file (maillog_file, "Dec 01 21:33:56.123456 host postfix/smtpd[1]: ..."), classic syslog
# ("Dec  1 21:33:56 host ...") or rsyslog's RFC 3339 stamp.
_SYSLOG = re.compile(
    r"(?:(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<clock>\d\d:\d\d:\d\d)(?:\.\d+)?"
    r"|(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?)) \S+ (?P<prog>[\w/.-]+)\[\d+\]: (?P<msg>.*)")
_QUEUE_ID = re.compile(r"(?P<qid>[0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}): (?P<rest>.*)")
_CLIENT = re.compile(r"client=(?P<name>[^\[\s]*)\[(?P<ip>[^\]]*)\](?:, sasl_method=\S+, sasl_username=(?P<user>[^,\s]*))?")
_PICKUP = re.compile(r"uid=\d+ from=<(?P<sender>[^>]*)>")
_MESSAGE_ID = re.compile(r"message-id=<?(?P<mid>[^>\s]*)>?")
_QMGR_FROM = re.compile(r"from=<(?P<sender>[^>]*)>, (?:size=(?P<size>\d+)|status=(?P<status>\w+))(?P<rest>.*)")
_DELIVERY = re.compile(
    r"to=<(?P<to>[^>]*)>,(?: orig_to=<[^>]*>,)? relay=(?P<relay>[^,]*),.*? dsn=(?P<dsn>[\d.]+), "
    r"status=(?P<status>\w+) ?(?P<detail>.*)")
_REJECT = re.compile(
    r"(?P<what>(?:milter-)?reject): (?P<stage>\S+) from (?P<name>[^\[\s]*)\[(?P<ip>[^\]]*)\]: (?P<detail>.*?); "
    r"from=<(?P<sender>[^>]*)> to=<(?P<to>[^>]*)>")
_SASL_FAILED = re.compile(
    r"warning: (?P<name>[^\[\s]*)\[(?P<ip>[^\]]*)\]: SASL (?P<method>\S+) authentication failed: "
    r"(?P<detail>[^,]*)(?:, sasl_username=(?P<user>\S+))?")


def parse_postfix(line: str, year_of: YearOf) -> dict | None:
    """One Postfix log line as a record, or None when it says nothing the index keeps."""
    match = _SYSLOG.match(line)
    if not match or not match["prog"].startswith("postfix"):
        return None
    at = _iso_utc(match["iso"]) if match["iso"] else year_of.utc(match["mon"], match["day"], match["clock"])
    service = match["prog"].split("/", 1)[1] if "/" in match["prog"] else match["prog"]
    message = match["msg"]
    if message.startswith("NOQUEUE: "):
        reject = _REJECT.match(message, 9)
        return _rejection(at, None, service, reject) if reject else None
    if message.startswith("warning: "):
        failed = _SASL_FAILED.match(message)
        if failed:
            return {"kind": "login", "at": at, "service": "smtp", "user": (failed["user"] or "").lower() or None,
                    "client_ip": failed["ip"], "result": "failed", "detail": f"SASL {failed['method']}: {failed['detail']}"}
        return None
    queued = _QUEUE_ID.match(message)
    if not queued:
        return None
    qid, rest = queued["qid"], queued["rest"]
    if rest.startswith("client="):
        client = _CLIENT.match(rest)
        return {"kind": "begin", "at": at, "queue_id": qid, "service": service, "client_ip": client["ip"],
                "client_name": client["name"], "sasl_user": (client["user"] or "").lower() or None} if client else None
    if rest.startswith("uid="):
        pickup = _PICKUP.match(rest)
        return {"kind": "begin", "at": at, "queue_id": qid, "service": service, "client_ip": "local",
                "client_name": "local", "sasl_user": None, "sender": pickup["sender"].lower()} if pickup else None
    if rest.startswith("message-id="):
        return {"kind": "update", "at": at, "queue_id": qid, "message_id": _MESSAGE_ID.match(rest)["mid"]}
    if rest.startswith("from=<"):
        origin = _QMGR_FROM.match(rest)
        if not origin:
            return None
        if origin["status"]:  # "from=<x>, status=expired, returned to sender": every open recipient
            return {"kind": "status", "at": at, "queue_id": qid, "to": None, "status": origin["status"],
                    "dsn": None, "relay": None, "detail": origin["rest"].lstrip(", ")}
        return {"kind": "update", "at": at, "queue_id": qid, "sender": origin["sender"].lower(),
                "size": int(origin["size"])}
    if rest.startswith("to=<"):
        delivery = _DELIVERY.match(rest)
        if not delivery:
            return None
        return {"kind": "status", "at": at, "queue_id": qid, "to": delivery["to"].lower(), "status": delivery["status"],
                "dsn": delivery["dsn"], "relay": delivery["relay"], "detail": delivery["detail"].strip("() ")}
    if rest.startswith(("reject: ", "milter-reject: ")):
        reject = _REJECT.match(rest)
        return _rejection(at, qid, service, reject) if reject else None
    if rest == "removed":
        return {"kind": "end", "at": at, "queue_id": qid}
    return None


def _rejection(at: str, qid: str | None, service: str, reject: re.Match) -> dict:
    dsn = re.search(r"\b([45]\.\d{1,3}\.\d{1,3})\b", reject["detail"])
    return {"kind": "reject", "at": at, "queue_id": qid, "service": service, "client_ip": reject["ip"],
            "client_name": reject["name"], "sender": reject["sender"].lower(), "to": reject["to"].lower(),
            "status": "rejected", "dsn": dsn.group(1) if dsn else None, "detail": f"{reject['what']}: {reject['detail']}"}


# Dovecot with the roles' log_timestamp ("2026-12-01 21:33:56 ") or its default ("Dec 01 21:33:56 ").
_DOVECOT = re.compile(
    r"(?:(?P<date>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)|(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<clock>\d\d:\d\d:\d\d)) "
    r"(?P<proc>[\w-]+)(?:\((?P<user>[^)]*)\))?(?:<[^>]*>)*: (?:(?:Debug|Info|Warning|Error|Fatal|Panic): )?(?P<msg>.*)")
_LOGIN_FIELDS = re.compile(r"user=<(?P<user>[^>]*)>.*?\brip=(?P<ip>[0-9A-Fa-f:.]+)")
_LMTP = re.compile(r"(?:sieve: )?msgid=<?(?P<mid>[^>:\s]*)>?: (?:[\w ]+action: )?"
                   r"(?P<what>saved mail to|stored mail into mailbox|save failed to"
                   r"|failed to store into mailbox) '?(?P<folder>[^':]*)'?(?P<rest>.*)")


def _dovecot_time(match: re.Match, year_of: YearOf) -> str:
    if match["date"]:
        return to_utc(datetime.strptime(match["date"], TIME_FORMAT))
    return year_of.utc(match["mon"], match["day"], match["clock"])


def parse_dovecot(line: str, year_of: YearOf) -> dict | None:
    """A login, a failed login or a delivery into a mailbox, or None."""
    match = _DOVECOT.match(line)
    if not match:
        return None
    proc, message = match["proc"], match["msg"]
    if proc.endswith("-login"):
        if message.startswith(("Login: ", "Logged in: ")):  # Dovecot 2.3, 2.4
            result, detail = "ok", ""
        elif "auth failed" in message or "Password mismatch" in message:
            result, detail = "failed", message.split(": user=<", 1)[0]
        else:
            return None
        fields = _LOGIN_FIELDS.search(message)
        if not fields:
            return None
        return {"kind": "login", "at": _dovecot_time(match, year_of), "service": proc[:-len("-login")],
                "user": fields["user"].lower() or None, "client_ip": fields["ip"], "result": result, "detail": detail}
    if proc == "lmtp" and match["user"]:
        stored = _LMTP.match(message)
        if not stored:
            return None
        failed = stored["what"].startswith(("save failed", "failed"))
        return {"kind": "delivery", "at": _dovecot_time(match, year_of), "message_id": stored["mid"],
                "mailbox": match["user"].lower(), "status": "failed" if failed else "stored",
                "detail": f"{stored['folder']}{stored['rest']}".strip()}
    return None


_RSPAMD = re.compile(r"(?P<date>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)? .*?rspamd_task_write_log: (?P<msg>.*)")
_RSPAMD_FIELDS = re.compile(
    r"id: <(?P<mid>[^>]*)>, qid: <(?P<qid>[^>]*)>.*?\(default: [TF] \((?P<action>[^)]*)\): \[(?P<score>[-\d.]+/[-\d.]+)\]")


def parse_rspamd(line: str, year_of: YearOf) -> dict | None:
    """The filter's verdict on one message (rspamd's task log line), or None."""
    match = _RSPAMD.match(line)
    if not match:
        return None
    fields = _RSPAMD_FIELDS.search(match["msg"])
    if not fields or fields["qid"] in ("", "undef"):
        return None
    return {"kind": "filter", "at": to_utc(datetime.strptime(match["date"], TIME_FORMAT)), "queue_id": fields["qid"],
            "message_id": fields["mid"], "action": fields["action"], "score": fields["score"]}


_NGINX_ACCESS = re.compile(r'(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<uri>\S+)[^"]*" (?P<status>\d{3})')


def webmail_request(method: str, uri: str) -> str | None:
    """What a Roundcube request did, for the requests the index keeps: a login attempt, or the compose form
    posted (Roundcube puts _action=send in the body, and ``_unlock`` in the address of that post only; a draft
    saved looks the same, which is why a message is marked "webmail" only next to Postfix's own line)."""
    if method != "POST":
        return None
    if "_task=login" in uri:
        return "webmail login"
    if "_action=send" in uri or ("_task=mail" in uri and "_unlock=" in uri and "_action=" not in uri):
        return "webmail send"
    return None


def parse_nginx_access(line: str, year_of: YearOf) -> dict | None:
    """A webmail login attempt or send, by client IP (nginx's combined format), or None."""
    match = _NGINX_ACCESS.match(line)
    if not match:
        return None
    request = webmail_request(match["method"], match["uri"])
    if not request:
        return None
    at = to_utc(datetime.strptime(match["time"], "%d/%b/%Y:%H:%M:%S %z"))
    return {"kind": "web", "at": at, "client_ip": match["ip"], "request": request, "status": match["status"],
            "detail": f"{match['method']} {match['uri'][:200]}"}


_NGINX_ERROR = re.compile(
    r"(?P<date>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] [^:]*: (?P<msg>.*?), client: (?P<ip>[^,]+)")


def parse_nginx_error(line: str, year_of: YearOf) -> dict | None:
    """An nginx error about a client, by client IP, or None."""
    match = _NGINX_ERROR.match(line)
    if not match:
        return None
    at = to_utc(datetime.strptime(match["date"], "%Y/%m/%d %H:%M:%S"))
    return {"kind": "web", "at": at, "client_ip": match["ip"], "request": "web error", "status": match["level"],
            "detail": match["msg"][:300]}


PARSERS = {"postfix": parse_postfix, "dovecot": parse_dovecot, "rspamd": parse_rspamd,
           "nginx_access": parse_nginx_access, "nginx_error": parse_nginx_error}
# Cheap tests that skip most lines before any regular expression runs.
PREFILTERS = {
    "postfix": ("client=", "uid=", "message-id=", "from=<", "to=<", "reject:", "removed", "authentication failed"),
    "dovecot": ("Login: ", "Logged in: ", "auth failed", "Password mismatch", "msgid="),
    "rspamd": ("rspamd_task_write_log",),
    "nginx_access": ("POST ",),
    "nginx_error": ("client: ",),
}


# --- files -----------------------------------------------------------------------------------------
@dataclass
class Config:
    index: str = "/var/lib/sonla-mail/logindex.sqlite"
    retention_days: int = 184
    user_database: str = "/var/lib/sonla-mail/users.sqlite"
    sources: dict = field(default_factory=dict)  # source -> list of live log paths; rotated ones are found beside
    # Whether a search answers with the user database's events. On several hosts (issue 15) only the db host's does:
    # the others read the database for its deletions alone (R7.2), and one question to every host names each event once.
    events: bool = True

    @property
    def events_database(self) -> str | None:
        """The user database a search reads the events from, or None."""
        return self.user_database if self.events else None

    @classmethod
    def load(cls, path: str) -> Config:
        with open(path, encoding="utf-8") as stream:
            values = json.load(stream)
        unknown = set(values.get("sources", {})) - set(SOURCES)
        if unknown:
            raise LogSearchError(f"{path}: unknown log sources {sorted(unknown)}; known: {', '.join(SOURCES)}")
        return cls(**values)


def log_files(live_path: str) -> list[str]:
    """The live file and its rotations (``-YYYYMMDD[.gz]`` with dateext, ``.N[.gz]`` without), oldest first."""
    found = set(glob.glob(glob.escape(live_path))) | set(glob.glob(glob.escape(live_path) + "-*")) \
        | set(glob.glob(glob.escape(live_path) + ".[0-9]*"))
    return sorted((path for path in found if os.path.isfile(path)), key=lambda path: (os.path.getmtime(path), path))


def _open(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def fingerprint(source: str, path: str) -> str | None:
    """A file's identity: its source and first line (its first 4 kB when longer). None while it has none
    (empty, or its first line still being written)."""
    try:
        with _open(path) as stream:
            first = stream.readline(4096)
    except (OSError, EOFError):
        return None
    if not first.endswith(b"\n") and len(first) < 4096:
        return None
    return hashlib.sha256(source.encode() + b"\0" + first).hexdigest()


def read_from(path: str, offset: int):
    """Whole lines of ``path`` after byte ``offset`` (of the uncompressed text), with the offset after each."""
    with _open(path) as stream:
        if path.endswith(".gz"):
            remaining = offset
            while remaining:
                skipped = len(stream.read(min(remaining, 1 << 20)))
                if not skipped:
                    return
                remaining -= skipped
        else:
            stream.seek(offset)
        position = offset
        for raw in stream:
            if not raw.endswith(b"\n"):
                return  # a line still being written: read it next time
            position += len(raw)
            yield raw.decode("utf-8", "replace"), position


# --- the index -------------------------------------------------------------------------------------
def make_index_folder(path: str) -> None:
    """The index's folder, root-only when made here: on a host of several without the user database's folder (issue
    15). An existing folder keeps the attributes the roles gave it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)


def open_index(path: str) -> sqlite3.Connection:
    """The index, made root-only when new: it names people, addresses and IPs."""
    make_index_folder(path)
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    connection = sqlite3.connect(path, timeout=60)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(SCHEMA)
    return connection


class Writer:
    """Applies records to the index; Postfix's messages are assembled across lines, files and runs by
    queue id: a message stays open until its ``removed`` line."""

    def __init__(self, connection: sqlite3.Connection):
        self.db = connection
        self.open_ids = {row["queue_id"]: row["id"] for row in
                         connection.execute("SELECT queue_id, id FROM message WHERE open = 1 AND queue_id IS NOT NULL")}
        self.rows: dict[str, list] = {"delivery": [], "filter": [], "login": [], "web": []}

    def _message(self, record: dict) -> int:
        found = self.open_ids.get(record["queue_id"])
        if found is None:  # its first line is in a file no longer kept, or was never written
            found = self._insert_message(record["at"], record["queue_id"], {})
        return found

    def _insert_message(self, at: str, queue_id: str | None, values: dict) -> int:
        cursor = self.db.execute(
            "INSERT INTO message (queue_id, at, service, client_ip, client_name, sasl_user, sender, open) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (queue_id, at, values.get("service"), values.get("client_ip"), values.get("client_name"),
             values.get("sasl_user"), values.get("sender"), 1 if queue_id else 0))
        if queue_id:
            self.open_ids[queue_id] = cursor.lastrowid
        return cursor.lastrowid

    def add(self, record: dict) -> None:
        kind = record["kind"]
        if kind == "begin":
            previous = self.open_ids.pop(record["queue_id"], None)
            if previous is not None:  # a queue id used again after a lost "removed" line
                self.db.execute("UPDATE message SET open = 0 WHERE id = ?", (previous,))
            self._insert_message(record["at"], record["queue_id"], record)
        elif kind == "update":
            values = {key: record[key] for key in ("message_id", "sender", "size") if key in record}
            assignments = ", ".join(f"{key} = ?" for key in values)
            self.db.execute(f"UPDATE message SET {assignments} WHERE id = ?", (*values.values(), self._message(record)))
        elif kind == "status":
            message = self._message(record)
            if record["to"] is None:  # expired: every recipient not yet delivered
                self.db.execute("UPDATE recipient SET status = ?, at = ?, detail = ? WHERE message = ? AND status = 'deferred'",
                                (record["status"], record["at"], record["detail"], message))
            else:
                self._recipient(message, record)
        elif kind == "reject":
            if record["queue_id"]:
                message = self._message(record)
            else:
                message = self._insert_message(record["at"], None, record)
            self.db.execute("UPDATE message SET sender = coalesce(sender, ?) WHERE id = ?", (record["sender"], message))
            self._recipient(message, {**record, "relay": None})
        elif kind == "end":
            found = self.open_ids.pop(record["queue_id"], None)
            if found is not None:
                self.db.execute("UPDATE message SET open = 0 WHERE id = ?", (found,))
        elif kind == "delivery":
            self.rows["delivery"].append(
                (record["at"], record["message_id"], record["mailbox"], record["status"], record["detail"]))
        elif kind == "filter":
            self.rows["filter"].append(
                (record["at"], record["queue_id"], record["message_id"], record["action"], record["score"]))
        elif kind == "login":
            self.rows["login"].append((record["at"], record["service"], record["user"], record["client_ip"],
                                       record["result"], record["detail"]))
        elif kind == "web":
            self.rows["web"].append((record["at"], record["client_ip"], record["request"], record["status"], record["detail"]))

    def _recipient(self, message: int, record: dict) -> None:
        self.db.execute(
            "INSERT INTO recipient (message, address, at, status, dsn, relay, detail) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (message, address) DO UPDATE SET at = excluded.at, status = excluded.status, "
            "dsn = excluded.dsn, relay = coalesce(excluded.relay, relay), detail = excluded.detail",
            (message, record["to"], record["at"], record["status"], record["dsn"], record["relay"], record["detail"]))

    def flush(self) -> None:
        columns = {"delivery": 5, "filter": 5, "login": 6, "web": 5}
        for table, rows in self.rows.items():
            if rows:
                self.db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * columns[table])})", rows)
                rows.clear()


def index_file(connection: sqlite3.Connection, writer: Writer, source: str, path: str, batch: int = 50_000) -> int:
    """Index what is new in one file; the lines read, committed with the file's new offset every ``batch``."""
    print_ = fingerprint(source, path)
    if print_ is None:
        return 0
    known = connection.execute("SELECT offset FROM source_file WHERE fingerprint = ?", (print_,)).fetchone()
    offset = known["offset"] if known else 0
    if known and path.endswith(".gz") and offset >= _uncompressed_size(path):
        return 0
    if known and not path.endswith(".gz") and offset >= os.path.getsize(path):
        return 0
    parse, needles = PARSERS[source], PREFILTERS[source]
    year_of = YearOf(datetime.fromtimestamp(os.path.getmtime(path)))
    count, last_at = 0, None
    position = offset
    for line, position in read_from(path, offset):
        count += 1
        if any(needle in line for needle in needles):
            record = parse(line, year_of)
            if record:
                writer.add(record)
                last_at = record["at"]
        if count % batch == 0:
            _commit_file(connection, writer, print_, source, path, position, last_at)
    _commit_file(connection, writer, print_, source, path, position, last_at)
    return count


def _uncompressed_size(path: str) -> int:
    """gzip's stored size of the uncompressed text (modulo 4 GiB, enough for one day's log)."""
    with open(path, "rb") as stream:
        stream.seek(-4, os.SEEK_END)
        return int.from_bytes(stream.read(4), "little")


def _commit_file(connection, writer: Writer, print_: str, source: str, path: str, offset: int, last_at) -> None:
    writer.flush()
    connection.execute(
        "INSERT INTO source_file (fingerprint, source, path, offset, last_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (fingerprint) DO UPDATE SET path = excluded.path, offset = excluded.offset, "
        "last_at = coalesce(excluded.last_at, last_at)", (print_, source, path, offset, last_at))
    connection.commit()


def expire(connection: sqlite3.Connection, cutoff: str) -> int:
    """R9.1: the index keeps what the logs keep; rows older than ``cutoff`` go (open messages stay)."""
    removed = 0
    with connection:
        removed += connection.execute(
            "DELETE FROM recipient WHERE message IN (SELECT id FROM message WHERE at < ? AND open = 0)", (cutoff,)).rowcount
        removed += connection.execute("DELETE FROM message WHERE at < ? AND open = 0", (cutoff,)).rowcount
        for table in ("delivery", "filter", "login", "web"):
            removed += connection.execute(f"DELETE FROM {table} WHERE at < ?", (cutoff,)).rowcount
        connection.execute("DELETE FROM source_file WHERE last_at < ?", (cutoff,))
        connection.execute("DELETE FROM purged WHERE deleted_at < ?", (cutoff,))
    return removed


def deletions(user_database: str) -> dict[str, str]:
    """Addresses whose mailbox was removed or revoked (R7.2), with the time of the latest deletion (mailbox_event,
    read as the backup's purge reads it), from the SQLite file or on several hosts from PostgreSQL (issue 15)."""
    if not _user_database_exists(user_database):
        return {}
    deleted: dict[str, str] = {}
    for event in _backup.read_deletion_events(user_database):
        if event["action"] in _backup.DELETION_ACTIONS:
            deleted[event["address"].lower()] = max(event["at"], deleted.get(event["address"].lower(), ""))
    return deleted


def _user_database_exists(user_database: str | None) -> bool:
    """A PostgreSQL URI is taken as there; a SQLite file that is not yet made is not opened (it would be made)."""
    return bool(user_database) and (_userdb.is_postgres(user_database) or os.path.exists(user_database))


def purge(connection: sqlite3.Connection, deleted: dict[str, str]) -> int:
    """R7.2: a deleted mailbox's address leaves the index, up to its deletion: its logins and deliveries go,
    and in the messages it sent or received it becomes ``ERASED``, so the other party's record stays whole.
    Remembered, so that no later run (or a rebuilt index) brings it back."""
    changed = 0
    with connection:
        connection.executemany("INSERT INTO purged (address, deleted_at) VALUES (?, ?) ON CONFLICT (address) "
                               "DO UPDATE SET deleted_at = max(deleted_at, excluded.deleted_at)", deleted.items())
        for row in connection.execute("SELECT address, deleted_at FROM purged").fetchall():
            values = (ERASED, row["address"], row["deleted_at"])
            for statement in ("UPDATE message SET sender = ? WHERE sender = ? AND at <= ?",
                              "UPDATE message SET sasl_user = ? WHERE sasl_user = ? AND at <= ?",
                              "UPDATE OR REPLACE recipient SET address = ? WHERE address = ? AND at <= ?"):
                changed += connection.execute(statement, values).rowcount
            changed += connection.execute("DELETE FROM login WHERE user = ? AND at <= ?", values[1:]).rowcount
            changed += connection.execute("DELETE FROM delivery WHERE mailbox = ? AND at <= ?", values[1:]).rowcount
    return changed


def purge_deleted(config: Config) -> int:
    """R7.2 at once, without indexing: what the lifecycle calls after it revokes (the hourly update would too)."""
    if not os.path.exists(config.index):
        return 0
    with open(config.index + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        connection = open_index(config.index)
        try:
            return purge(connection, deletions(config.user_database))
        finally:
            connection.close()


def update(config: Config, now: datetime | None = None) -> dict:
    """Index every source's new lines, then expire and purge; one run at a time (a lock beside the index)."""
    now = now or datetime.now(UTC)
    make_index_folder(config.index)
    with open(config.index + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        connection = open_index(config.index)
        try:
            writer = Writer(connection)
            lines = {}
            for source, paths in config.sources.items():
                lines[source] = sum(index_file(connection, writer, source, path)
                                    for live in paths for path in log_files(live))
            cutoff = to_utc(now - timedelta(days=config.retention_days))
            expired = expire(connection, cutoff)
            purged = purge(connection, deletions(config.user_database))
        finally:
            connection.close()
    return {"lines": lines, "expired": expired, "purged": purged}


# --- search ---------------------------------------------------------------------------------------
# The messages a search finds, by kind (an address: those it sent, authenticated or received).
_FOUND = {
    "address": ("SELECT id FROM message WHERE sender = :value AND at BETWEEN :since AND :until "
                "UNION SELECT id FROM message WHERE sasl_user = :value AND at BETWEEN :since AND :until "
                "UNION SELECT message FROM recipient WHERE address = :value AND at BETWEEN :since AND :until"),
    "ip": "SELECT id FROM message WHERE client_ip = :value AND at BETWEEN :since AND :until",
    "message_id": "SELECT id FROM message WHERE message_id = :value AND at BETWEEN :since AND :until",
    "queue_id": "SELECT id FROM message WHERE queue_id = :value AND at BETWEEN :since AND :until",
}
# Every message found, one row per recipient, with what the other logs add, in one statement: the filter's
# verdict (by queue id, within a day), the webmail's send request (by the browser's address, XCLIENT, within
# WEBMAIL_WINDOW) and Dovecot's delivery (by message-id and mailbox) are each found by an index inside SQLite,
# not by one query per message from Python, which made the busiest address's 6 months take seconds. Searched
# by address, a message it received shows only its own recipient row, not the other recipients'.
_MESSAGES = """
WITH found (id) AS ({found})
SELECT m.*, r.address AS recipient, r.status AS recipient_status, r.dsn, r.detail AS recipient_detail,
    (SELECT f.action || ' ' || f.score FROM filter f WHERE f.queue_id = m.queue_id
        AND f.at BETWEEN datetime(m.at, '-1 day') AND datetime(m.at, '+1 day') ORDER BY f.at LIMIT 1) AS verdict,
    CASE WHEN m.sasl_user <> '' AND m.client_ip <> '' THEN EXISTS (
        SELECT 1 FROM web w WHERE w.client_ip = m.client_ip AND w.request = 'webmail send'
        AND w.at BETWEEN datetime(m.at, :window_start) AND datetime(m.at, :window_end)) END AS webmail,
    (SELECT d.status || ' ' || d.detail FROM delivery d WHERE d.message_id = m.message_id AND d.mailbox = r.address
        LIMIT 1) AS stored
FROM found CROSS JOIN message m ON m.id = found.id LEFT JOIN recipient r ON r.message = m.id
WHERE :kind <> 'address' OR r.address IS NULL OR :value IN (m.sender, m.sasl_user) OR r.address = :value
ORDER BY m.id, r.address
"""


def _message_rows(connection, kind: str, value: str, since: str, until: str) -> list[dict]:
    window_start, window_end = (f"{offset.total_seconds():+.0f} seconds" for offset in WEBMAIL_WINDOW)
    rows = []
    for found in connection.execute(_MESSAGES.format(found=_FOUND[kind]), {
            "kind": kind, "value": value, "since": since, "until": until,
            "window_start": window_start, "window_end": window_end}):
        if found["recipient"] is None:
            status = "queued" if found["open"] else "unknown"
        else:
            status = found["recipient_status"]
        detail = "; ".join(part for part in (
            f"dsn={found['dsn']}" if found["dsn"] else "",
            found["recipient_detail"],
            f"sasl_user={found['sasl_user']}" if found["sasl_user"] else "",
            f"via={found['service']}" if found["service"] else "",
            f"filter={found['verdict']}" if found["verdict"] else "",
            "webmail" if found["webmail"] else "",
            f"mailbox: {found['stored']}".strip() if found["stored"] else "") if part)
        rows.append({
            "time": found["at"], "kind": "message", "from": found["sender"] or "", "to": found["recipient"] or "",
            "client_ip": found["client_ip"] or "", "size": found["size"], "status": status, "detail": detail,
            "queue_id": found["queue_id"] or "", "message_id": found["message_id"] or ""})
    return rows


def _login_rows(connection, kind: str, value: str, since: str, until: str) -> list[dict]:
    column = {"address": "user", "ip": "client_ip"}.get(kind)
    if column is None:
        return []
    rows = [{"time": row["at"], "kind": "login", "from": row["user"] or "", "to": row["service"],
             "client_ip": row["client_ip"] or "", "size": None, "status": row["result"], "detail": row["detail"] or "",
             "queue_id": "", "message_id": ""}
            for row in connection.execute(f"SELECT * FROM login WHERE {column} = ? AND at BETWEEN ? AND ?",
                                          (value, since, until))]
    if kind == "ip":
        rows += [{"time": row["at"], "kind": "web", "from": "", "to": row["request"], "client_ip": row["client_ip"],
                  "size": None, "status": row["status"] or "", "detail": row["detail"] or "", "queue_id": "", "message_id": ""}
                 for row in connection.execute("SELECT * FROM web WHERE client_ip = ? AND at BETWEEN ? AND ?",
                                               (value, since, until))]
    return rows


# A delivery into a mailbox whose message this host's Postfix did not log: on a mailstore of several hosts (issue 15)
# the MX logs the message and the store's Dovecot the delivery. Where both are logged, the message's row carries it.
_LONE_DELIVERIES = {"address": "d.mailbox = :value", "message_id": "d.message_id = :value"}
_DELIVERIES = """
SELECT d.* FROM delivery d WHERE {where} AND d.at BETWEEN :since AND :until
    AND NOT EXISTS (SELECT 1 FROM message m WHERE m.message_id = d.message_id)
"""


def _delivery_rows(connection, kind: str, value: str, since: str, until: str) -> list[dict]:
    if kind not in _LONE_DELIVERIES:
        return []
    return [{"time": row["at"], "kind": "delivery", "from": "", "to": row["mailbox"], "client_ip": "", "size": None,
             "status": row["status"], "detail": row["detail"] or "", "queue_id": "", "message_id": row["message_id"] or ""}
            for row in connection.execute(_DELIVERIES.format(where=_LONE_DELIVERIES[kind]),
                                          {"value": value, "since": since, "until": until})]


def _event_rows(user_database: str | None, kind: str, value: str, since: str, until: str) -> list[dict]:
    """The lifecycle's events of an address (mailbox_event: added, suspended, restored, removed, ...)."""
    if kind != "address" or not _user_database_exists(user_database):
        return []
    connection = _userdb.connect(user_database, upgrade=False)
    try:
        found = connection.execute(
            "SELECT at, action, request_ref, detail FROM mailbox_event WHERE lower(address) = ? AND at BETWEEN ? AND ?",
            (value, since, until)).fetchall()
    finally:
        connection.close()
    return [{"time": row["at"], "kind": "event", "from": "", "to": value, "client_ip": "", "size": None,
             "status": row["action"], "detail": "; ".join(part for part in (
                 f"request={row['request_ref']}" if row["request_ref"] else "", row["detail"] or "") if part),
             "queue_id": "", "message_id": ""} for row in found]


def normalize(kind: str, value: str) -> str:
    """The searched value as the index keeps it; a clear error for a value that cannot match."""
    if kind not in KINDS:
        raise LogSearchError(f"unknown search kind {kind!r}; one of {', '.join(KINDS)}")
    value = value.strip()
    if kind == "address":
        if "@" not in value:
            raise LogSearchError(f"{value!r} is not a mail address")
        return value.lower()
    if kind == "message_id":
        return value.strip("<>")
    if kind == "queue_id" and not re.fullmatch(r"[0-9A-Za-z]{6,}", value):
        raise LogSearchError(f"{value!r} is not a Postfix queue id")
    return value


def search(connection, kind: str, value: str, since: str, until: str, user_database: str | None = None) -> list[dict]:
    """Every record of ``value`` between ``since`` and ``until`` (UTC, as stored), in time order."""
    value = normalize(kind, value)
    rows = _message_rows(connection, kind, value, since, until)
    rows += _login_rows(connection, kind, value, since, until)
    rows += _delivery_rows(connection, kind, value, since, until)
    rows += _event_rows(user_database, kind, value, since, until)
    return sorted(rows, key=lambda row: (row["time"], row["kind"], row["to"]))


def day_range(since: str | None, until: str | None, retention_days: int, now: datetime | None = None) -> tuple[str, str]:
    """UTC bounds for local days ``since`` and ``until`` (YYYY-MM-DD, both included); by default the whole retention."""
    now = now or datetime.now(UTC)
    try:
        start = datetime.strptime(since, "%Y-%m-%d") if since else None
        end = datetime.strptime(until, "%Y-%m-%d") + timedelta(days=1, seconds=-1) if until else None
    except ValueError as error:
        raise LogSearchError(f"dates are YYYY-MM-DD: {error}") from None
    low = to_utc(start) if start else to_utc(now - timedelta(days=retention_days + 1))
    high = to_utc(end) if end else to_utc(now + timedelta(days=1))
    if low > high:
        raise LogSearchError(f"--since {since} is after --until {until}")
    return low, high


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=1)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=RECORD_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    if fmt != "table":
        raise LogSearchError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    columns = ("time", "kind", "from", "to", "client_ip", "size", "status", "detail")
    cells = [columns] + [tuple("" if row[name] is None else str(row[name]) for name in columns) for row in rows]
    widths = [min(max(len(line[index]) for line in cells), 60) for index in range(len(columns) - 1)]
    lines = ["  ".join([cell.ljust(width)[:max(width, 1)] for cell, width in zip(line, widths, strict=False)] + [line[-1]])
             for line in cells]
    return "\n".join(lines) + f"\n({len(rows)} records, times in UTC)"
