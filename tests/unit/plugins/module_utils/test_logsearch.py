"""The log search (docs/logs.md, R9.1, R7.2): parsers, the incremental index over rotated files, retention,
the purge of deleted mailboxes and the search's output."""

import csv
import gzip
import io
import json
import os
import shutil
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.sonla.mail.plugins.module_utils import _logsearch, _userdb

USER = "dungct.skhcn@sonla.gov.vn"
PEER = "hailv.skhcn@sonla.gov.vn"
BROWSER = "10.88.0.1"
DECEMBER = _logsearch.YearOf(datetime(2026, 12, 2))


def postfix_message(qid, day="01", second=56, sender=USER, to=PEER, status="sent", mid="abc@sonla.gov.vn", removed=True):
    lines = [
        (f"Dec {day} 21:33:{second}.123456 mail postfix/submissions/smtpd[100]: {qid}: client=unknown[{BROWSER}], "
         f"sasl_method=PLAIN, sasl_username={sender}"),
        f"Dec {day} 21:33:{second}.223456 mail postfix/cleanup[101]: {qid}: message-id=<{mid}>",
        f"Dec {day} 21:33:{second}.323456 mail postfix/qmgr[102]: {qid}: from=<{sender}>, size=1234, nrcpt=1 (queue active)",
        (f"Dec {day} 21:33:{second}.423456 mail postfix/lmtp[103]: {qid}: to=<{to}>, relay=mail[private/dovecot-lmtp], "
         f"delay=0.1, delays=0/0/0/0, dsn=2.0.0, status={status} (250 2.0.0 <{to}> Saved)"),
    ]
    if removed:
        lines.append(f"Dec {day} 21:33:{second}.523456 mail postfix/qmgr[102]: {qid}: removed")
    return lines


# --- parsers ---------------------------------------------------------------------------------------
def test_postfix_lines_become_records():
    begin, mid, origin, status, end = (_logsearch.parse_postfix(line, DECEMBER) for line in postfix_message("4ABCDEF123"))
    assert begin == {"kind": "begin", "at": "2026-12-01 21:33:56", "queue_id": "4ABCDEF123", "service": "submissions/smtpd",
                     "client_ip": BROWSER, "client_name": "unknown", "sasl_user": USER}
    assert mid["message_id"] == "abc@sonla.gov.vn"
    assert (origin["sender"], origin["size"]) == (USER, 1234)
    assert (status["to"], status["status"], status["dsn"]) == (PEER, "sent", "2.0.0")
    assert status["detail"] == f"250 2.0.0 <{PEER}> Saved"
    assert end == {"kind": "end", "at": "2026-12-01 21:33:56", "queue_id": "4ABCDEF123"}


def test_refusals_and_failed_authentications_keep_their_error_text():
    refused = _logsearch.parse_postfix(
        "Dec 01 21:34:00.000001 mail postfix/smtpd[105]: NOQUEUE: reject: RCPT from client.test.invalid[203.0.113.9]: "
        "554 5.7.1 <x@example.org>: Relay access denied; from=<a@example.org> to=<x@example.org> proto=ESMTP helo=<c>",
        DECEMBER)
    assert (refused["queue_id"], refused["client_ip"], refused["status"], refused["dsn"]) == (
        None, "203.0.113.9", "rejected", "5.7.1")
    assert "Relay access denied" in refused["detail"]
    spam = _logsearch.parse_postfix(
        "Dec 01 21:34:00.000001 mail postfix/cleanup[7]: 4A1B2C3D4E: milter-reject: END-OF-MESSAGE from x[203.0.113.9]: "
        "5.7.1 Spam message rejected; from=<a@example.org> to=<b@sonla.gov.vn> proto=ESMTP helo=<x>", DECEMBER)
    assert (spam["queue_id"], spam["to"], spam["detail"]) == (
        "4A1B2C3D4E", "b@sonla.gov.vn", "milter-reject: 5.7.1 Spam message rejected")
    failed = _logsearch.parse_postfix(
        f"Dec 01 21:34:01.000000 mail postfix/submission/smtpd[106]: warning: unknown[{BROWSER}]: SASL PLAIN "
        f"authentication failed: authentication failure, sasl_username={USER}", DECEMBER)
    assert (failed["kind"], failed["service"], failed["user"], failed["result"]) == ("login", "smtp", USER, "failed")


def test_lines_the_index_does_not_keep_are_none():
    for line in ("Dec 01 21:33:56.1 mail postfix/smtpd[1]: connect from unknown[1.2.3.4]",
                 "Dec 01 21:33:56.1 mail postfix/smtpd[1]: disconnect from unknown[1.2.3.4] ehlo=1 quit=1 commands=2",
                 "Dec 01 21:33:56.1 mail systemd[1]: Started something", "garbage"):
        assert _logsearch.parse_postfix(line, DECEMBER) is None


def test_a_syslog_stamp_after_the_files_day_is_from_the_year_before():
    january = _logsearch.YearOf(datetime(2027, 1, 3))
    line = "Dec 31 23:59:59.000001 mail postfix/qmgr[1]: 4ABCDEF12: removed"
    assert _logsearch.parse_postfix(line, january)["at"] == "2026-12-31 23:59:59"
    assert _logsearch.parse_postfix(line.replace("Dec 31", "Jan 03"), january)["at"] == "2027-01-03 23:59:59"


def test_rsyslog_stamps_are_read_with_their_offset():
    line = "2026-12-02T04:33:56.123456+07:00 mail postfix/qmgr[1]: 4ABCDEF12: removed"
    assert _logsearch.parse_postfix(line, DECEMBER)["at"] == "2026-12-01 21:33:56"


@pytest.mark.parametrize("line, result", [
    ((f"2026-12-01 21:33:50 imap-login: Info: Logged in: user=<{USER}>, method=PLAIN, rip={BROWSER}, lip=127.0.0.1, "
     "mpid=5, TLS, session=<a>"), "ok"),  # Dovecot 2.4
    ((f"2026-12-01 21:33:50 imap-login: Info: Login: user=<{USER}>, method=PLAIN, rip={BROWSER}, lip=127.0.0.1, "
     "mpid=5, TLS, session=<a>"), "ok"),
    # Dovecot 2.4 and 2.3 say a failure differently.
    ((f"2026-12-01 21:33:50 imap-login: Info: Login aborted: Connection closed (auth failed, 1 attempts in 2 secs) "
     f"(auth_failed): user=<{USER}>, method=PLAIN, rip={BROWSER}, lip=127.0.0.1, TLS"), "failed"),
    ((f"Dec 01 21:33:50 pop3-login: Info: Disconnected (auth failed, 1 attempts in 2 secs): user=<{USER}>, "
     f"method=PLAIN, rip={BROWSER}, lip=10.0.0.1, TLS"), "failed"),
])
def test_dovecot_logins_and_failed_logins(line, result):
    record = _logsearch.parse_dovecot(line, DECEMBER)
    assert (record["user"], record["client_ip"], record["result"], record["at"]) == (USER, BROWSER, result, "2026-12-01 21:33:50")


def test_dovecot_deliveries_name_the_message_and_the_mailbox():
    stored = _logsearch.parse_dovecot(
        f"2026-12-01 21:33:56 lmtp({PEER})<77><xyz>: Info: sieve: msgid=<abc@sonla.gov.vn>: stored mail into mailbox 'INBOX'",
        DECEMBER)
    assert (stored["mailbox"], stored["message_id"], stored["status"], stored["detail"]) == (
        PEER, "abc@sonla.gov.vn", "stored", "INBOX")
    full = _logsearch.parse_dovecot(
        f"2026-12-01 21:33:56 lmtp({PEER})<77><xyz>: Error: msgid=<q@x>: save failed to INBOX: Quota exceeded", DECEMBER)
    assert (full["status"], full["detail"]) == ("failed", "INBOX: Quota exceeded")
    junk = _logsearch.parse_dovecot(
        f"2026-12-01 21:33:56 lmtp({PEER})<7><x>: Info: sieve: msgid=<j@x>: fileinto action: stored mail into mailbox 'Junk'",
        DECEMBER)
    assert (junk["message_id"], junk["detail"]) == ("j@x", "Junk")
    assert _logsearch.parse_dovecot("2026-12-01 21:33:56 master: Info: Dovecot v2.4.1 starting up", DECEMBER) is None


def test_the_filters_verdict_and_the_webmails_requests():
    verdict = _logsearch.parse_rspamd(
        "2026-12-01 21:33:56 #12(rspamd_proxy) <d1>; proxy; rspamd_task_write_log: id: <abc@sonla.gov.vn>, qid: <4ABCDEF123>, "
        "ip: 10.88.0.1, from: <a@b>, (default: T (reject): [16.50/15.00] [GTUBE(16.5){}]), len: 1, time: 1ms", DECEMBER)
    assert (verdict["queue_id"], verdict["action"], verdict["score"]) == ("4ABCDEF123", "reject", "16.50/15.00")
    login = _logsearch.parse_nginx_access(
        f'{BROWSER} - - [02/Dec/2026:04:33:49 +0700] "POST /?_task=login HTTP/1.1" 401 0 "-" "C"', DECEMBER)
    assert (login["at"], login["request"], login["status"]) == ("2026-12-01 21:33:49", "webmail login", "401")
    assert _logsearch.parse_nginx_access(f'{BROWSER} - - [01/Dec/2026:21:33:49 +0000] "GET /skins/x.css HTTP/1.1" 200 9 "-" "C"',
                                         DECEMBER) is None
    # Roundcube posts the compose form to ?_task=mail&_unlock=...&_framed=1, _action=send in the body.
    send = _logsearch.parse_nginx_access(
        f'{BROWSER} - - [01/Dec/2026:21:33:55 +0000] "POST /?_task=mail&_unlock=loading1&_framed=1 HTTP/1.1" 200 9 "-" "C"',
        DECEMBER)
    assert send["request"] == "webmail send"
    assert _logsearch.parse_nginx_access(
        f'{BROWSER} - - [01/Dec/2026:21:33:55 +0000] "POST /?_task=mail&_action=refresh HTTP/1.1" 200 9 "-" "C"',
        DECEMBER) is None
    error = _logsearch.parse_nginx_error(
        f'2026/12/01 21:33:49 [error] 7#7: *3 open() "/x" failed (2: No such file), client: {BROWSER}, server: mail', DECEMBER)
    assert (error["client_ip"], error["status"]) == (BROWSER, "error")


@given(st.text(max_size=300))
def test_no_line_breaks_a_parser(line):  # any byte sequence may be in a log
    for parse in _logsearch.PARSERS.values():
        record = parse(line, DECEMBER)
        assert record is None or record["kind"]


# --- the index -------------------------------------------------------------------------------------
@pytest.fixture
def logs(tmp_path):
    (tmp_path / "log").mkdir()
    config = _logsearch.Config(index=str(tmp_path / "index.sqlite"), user_database=str(tmp_path / "users.sqlite"),
                               sources={"postfix": [str(tmp_path / "log" / "mail.log")],
                                        "dovecot": [str(tmp_path / "log" / "dovecot.log")]})
    _userdb.connect(config.user_database).close()
    return config


def write(path, lines, mode="a", mtime=datetime(2026, 12, 2)):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, mode + "t", encoding="utf-8") as stream:
        stream.write("".join(line + "\n" for line in lines))
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))


def find(config, kind, value, since="2026-06-01", until="2026-12-31"):
    connection = _logsearch.open_index(config.index)
    try:
        low, high = _logsearch.day_range(since, until, config.retention_days)
        return _logsearch.search(connection, kind, value, low, high, config.user_database)
    finally:
        connection.close()


NOW = datetime(2026, 12, 2, tzinfo=UTC)


def test_each_line_is_indexed_once_through_copytruncate_and_compression(logs):
    live = logs.sources["postfix"][0]
    write(live, postfix_message("4AAAAAA001", second=10))
    assert _logsearch.update(logs, NOW)["lines"]["postfix"] == 5
    write(live, postfix_message("4AAAAAA002", second=20, removed=False))  # still in the queue
    assert _logsearch.update(logs, NOW)["lines"]["postfix"] == 4
    # logrotate: copytruncate (Postfix), then the next day delaycompress gzips the copy.
    shutil.copy(live, live + "-20261201")
    write(live + "-20261201", postfix_message("4AAAAAA003", second=30))  # written between the copy and the truncation
    write(live, [], mode="w")
    write(live, ["Dec 02 00:00:01.000001 mail postfix/qmgr[102]: 4AAAAAA002: removed"])
    assert _logsearch.update(logs, NOW)["lines"]["postfix"] == 6
    with open(live + "-20261201", "rb") as plain, gzip.open(live + "-20261201.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    os.remove(live + "-20261201")
    assert _logsearch.update(logs, NOW)["lines"]["postfix"] == 0

    rows = find(logs, "address", USER)
    assert [row["queue_id"] for row in rows] == ["4AAAAAA001", "4AAAAAA002", "4AAAAAA003"]
    connection = _logsearch.open_index(logs.index)
    assert connection.execute("SELECT count(*) FROM message WHERE open = 1").fetchone()[0] == 0  # 002 closed across the rotation
    assert oct(os.stat(logs.index).st_mode & 0o777) == "0o600"  # addresses and IPs: root only


def test_a_message_joins_postfix_dovecot_and_the_filter(logs, tmp_path):
    write(logs.sources["postfix"][0], postfix_message("4ABCDEF123"))
    write(logs.sources["dovecot"][0], [
        f"2026-12-01 21:33:50 imap-login: Info: Logged in: user=<{USER}>, method=PLAIN, rip={BROWSER}, lip=127.0.0.1, TLS",
        f"2026-12-01 21:33:56 lmtp({PEER})<77><xyz>: Info: msgid=<abc@sonla.gov.vn>: saved mail to INBOX",
    ])
    rspamd = tmp_path / "log" / "rspamd.log"
    write(rspamd, [("2026-12-01 21:33:56 #1(rspamd_proxy) <d>; proxy; rspamd_task_write_log: id: <abc@sonla.gov.vn>, "
                   "qid: <4ABCDEF123>, ip: 10.88.0.1, (default: F (no action): [0.50/15.00] [X]), len: 1")])
    logs.sources["rspamd"] = [str(rspamd)]
    _logsearch.update(logs, NOW)
    message, = find(logs, "message_id", "<abc@sonla.gov.vn>")
    assert (message["from"], message["to"], message["client_ip"], message["size"], message["status"]) == (
        USER, PEER, BROWSER, 1234, "sent")
    assert "filter=no action 0.50/15.00" in message["detail"] and "mailbox: stored INBOX" in message["detail"]
    assert find(logs, "queue_id", "4ABCDEF123") == [message]
    by_ip = find(logs, "ip", BROWSER)
    assert [row["kind"] for row in by_ip] == ["login", "message"]
    # The recipient sees the message, not the sender's other recipients.
    assert [row["to"] for row in find(logs, "address", PEER)] == [PEER]


def test_every_message_gets_its_own_verdict_webmail_send_and_delivery(logs, tmp_path):
    """The search joins the other logs for all its messages in one statement (the busiest address's 6 months in
    under 2 s, docs/benchmarks.md): each message must still get its own verdict, send and delivery, not a
    neighbour's."""
    other = "thanhnv.skhcn@sonla.gov.vn"
    write(logs.sources["postfix"][0], postfix_message("4BBBBBB001", second=10, mid="one@sonla.gov.vn", removed=False) + [
        (f"Dec 01 21:33:10.450000 mail postfix/lmtp[103]: 4BBBBBB001: to=<{other}>, relay=mail[private/dovecot-lmtp], "
         "delay=0.1, delays=0/0/0/0, dsn=4.2.2, status=deferred (452 4.2.2 Mailbox is full)"),
        "Dec 01 21:33:10.550000 mail postfix/qmgr[102]: 4BBBBBB001: removed",
        # Received from outside by USER and PEER, from the browser's address too, but without a login: no webmail.
        f"Dec 01 21:33:20.100000 mail postfix/smtpd[200]: 4BBBBBB002: client=mx.example.org[{BROWSER}]",
        "Dec 01 21:33:20.200000 mail postfix/cleanup[101]: 4BBBBBB002: message-id=<two@example.org>",
        "Dec 01 21:33:20.300000 mail postfix/qmgr[102]: 4BBBBBB002: from=<news@example.org>, size=99, nrcpt=2 (queue active)",
        *(f"Dec 01 21:33:20.400000 mail postfix/lmtp[103]: 4BBBBBB002: to=<{to}>, relay=mail[private/dovecot-lmtp], "
          f"delay=0.1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 <{to}> Saved)" for to in (USER, PEER)),
        "Dec 01 21:33:20.500000 mail postfix/qmgr[102]: 4BBBBBB002: removed",
    ] + postfix_message("4BBBBBB003", second=30, mid="three@sonla.gov.vn", status="bounced"))
    write(logs.sources["dovecot"][0], [
        f"2026-12-01 21:33:10 lmtp({PEER})<77><x>: Info: msgid=<one@sonla.gov.vn>: saved mail to INBOX",
        f"2026-12-01 21:33:20 lmtp({USER})<78><y>: Info: msgid=<two@example.org>: saved mail to Junk",
        f"2026-12-01 21:33:20 lmtp({PEER})<78><y>: Info: msgid=<two@example.org>: saved mail to INBOX",
    ])
    rspamd, access = tmp_path / "log" / "rspamd.log", tmp_path / "log" / "access.log"
    verdict = ("2026-12-{day} 21:33:{second} #1(rspamd_proxy) <d>; proxy; rspamd_task_write_log: id: <x>, qid: <{qid}>, "
               "ip: 10.88.0.1, (default: {flag} ({action}): [{score}/15.00] [X]), len: 1")
    write(rspamd, [verdict.format(day="01", second=10, qid="4BBBBBB001", flag="F", action="no action", score="0.50"),
                   verdict.format(day="01", second=20, qid="4BBBBBB002", flag="T", action="add header", score="7.00"),
                   # The same queue id two days before: another message, not this one's verdict.
                   verdict.format(day="29", second=30, qid="4BBBBBB003", flag="T", action="reject", score="20.00")],
          mtime=datetime(2026, 11, 29))
    os.utime(rspamd, (NOW.timestamp(), NOW.timestamp()))
    # The webmail's send of 001, logged when it ends (12 s after Postfix's client= line); 002 came with no login, 003 later.
    write(access, [f'{BROWSER} - - [01/Dec/2026:21:33:22 +0000] "POST /?_task=mail&_action=send HTTP/1.1" 200 9 "-" "C"'])
    logs.sources.update(rspamd=[str(rspamd)], nginx_access=[str(access)])
    _logsearch.update(logs, NOW)

    def summary(rows):
        return [(row["queue_id"], row["to"], row["status"], row["detail"]) for row in rows if row["kind"] == "message"]

    sent_by, verdict = f"sasl_user={USER}; via=submissions/smtpd", "filter=no action 0.50/15.00; webmail"
    junk = "filter=add header 7.00/15.00"
    assert summary(find(logs, "address", USER)) == [
        ("4BBBBBB001", PEER, "sent", f"dsn=2.0.0; 250 2.0.0 <{PEER}> Saved; {sent_by}; {verdict}; mailbox: stored INBOX"),
        ("4BBBBBB001", other, "deferred", f"dsn=4.2.2; 452 4.2.2 Mailbox is full; {sent_by}; {verdict}"),
        ("4BBBBBB002", USER, "sent", f"dsn=2.0.0; 250 2.0.0 <{USER}> Saved; via=smtpd; {junk}; mailbox: stored Junk"),
        ("4BBBBBB003", PEER, "bounced", f"dsn=2.0.0; 250 2.0.0 <{PEER}> Saved; {sent_by}"),
    ]
    # The same joins by IP: every recipient of every message from the browser's address.
    assert [(queue_id, to) for queue_id, to, _, _ in summary(find(logs, "ip", BROWSER))] == [
        ("4BBBBBB001", PEER), ("4BBBBBB001", other), ("4BBBBBB002", USER), ("4BBBBBB002", PEER), ("4BBBBBB003", PEER)]


def test_the_search_reads_every_table_through_an_index(logs):
    """A search's time grows with what it finds, never with the index (docs/logs.md): no table is scanned."""
    connection = _logsearch.open_index(logs.index)
    for kind in _logsearch.KINDS:
        plan = connection.execute("EXPLAIN QUERY PLAN " + _logsearch._MESSAGES.format(found=_logsearch._FOUND[kind]), {
            "kind": kind, "value": USER, "since": "2026-06-01", "until": "2026-12-31",
            "window_start": "-5 seconds", "window_end": "+120 seconds"}).fetchall()
        details = [row["detail"] for row in plan]
        assert any("USING INDEX delivery_message" in detail for detail in details), details
        assert [detail for detail in details if detail.startswith("SCAN") and detail != "SCAN found"] == [], details
    for where in _logsearch._LONE_DELIVERIES.values():  # a store's deliveries (issue 15)
        plan = connection.execute("EXPLAIN QUERY PLAN " + _logsearch._DELIVERIES.format(where=where), {
            "value": USER, "since": "2026-06-01", "until": "2026-12-31"}).fetchall()
        details = [row["detail"] for row in plan]
        assert [detail for detail in details if detail.startswith("SCAN")] == [], details


def test_a_stores_deliveries_are_found_where_another_host_logged_the_message(logs):
    """Several hosts (issue 15): a mailstore's Dovecot logs the delivery, the MX's Postfix the message; the store's
    search answers with the delivery, by address and by message-id. On one host the message's row carries it
    (the test above: one row for the message-id)."""
    write(logs.sources["dovecot"][0], [
        f"2026-12-01 21:33:56 lmtp({PEER})<77><xyz>: Info: msgid=<abc@sonla.gov.vn>: saved mail to INBOX",
        f"2026-12-01 21:34:10 lmtp({USER})<78><xyz>: Info: msgid=<def@sonla.gov.vn>: saved mail to Junk",
    ])
    _logsearch.update(logs, NOW)
    delivery, = find(logs, "address", PEER)
    assert (delivery["kind"], delivery["to"], delivery["status"], delivery["detail"], delivery["message_id"]) == (
        "delivery", PEER, "stored", "INBOX", "abc@sonla.gov.vn")
    assert find(logs, "message_id", "<abc@sonla.gov.vn>") == [delivery]
    assert find(logs, "ip", BROWSER) == [] and find(logs, "queue_id", "4ABCDEF123") == []


def test_a_host_without_the_user_databases_folder_gets_a_root_only_one_for_the_index(logs, tmp_path):
    """Several hosts (issue 15): a webmail host of its own has no /var/lib/sonla-mail; a folder that exists keeps its
    attributes (another role's)."""
    logs.index = str(tmp_path / "new" / "logindex.sqlite")
    assert _logsearch.update(logs, NOW)["lines"] == {"postfix": 0, "dovecot": 0}
    assert oct(os.stat(tmp_path / "new").st_mode & 0o777) == "0o700"
    os.chmod(tmp_path / "new", 0o2770)
    _logsearch.update(logs, NOW)
    assert oct(os.stat(tmp_path / "new").st_mode & 0o7777) == "0o2770"


def test_a_host_without_the_events_reads_the_database_for_its_deletions_only(logs):
    """Several hosts (issue 15): every host purges deleted mailboxes from its index (R7.2), but only the db host's
    search names the events, so one question to every host names each once."""
    connection = _userdb.connect(logs.user_database)
    _userdb.record_events(connection, [("2026-11-03 08:00:00", USER, "suspended", "12/QĐ-SKHCN", "idle")])
    connection.commit()
    connection.close()
    assert [row["kind"] for row in find(logs, "address", USER)] == ["event"]
    elsewhere = _logsearch.Config(**{**logs.__dict__, "events": False})
    assert elsewhere.events_database is None and logs.events_database == logs.user_database
    index = _logsearch.open_index(elsewhere.index)
    try:
        low, high = _logsearch.day_range("2026-06-01", "2026-12-31", elsewhere.retention_days)
        assert _logsearch.search(index, "address", USER, low, high, elsewhere.events_database) == []
    finally:
        index.close()


def test_the_index_keeps_what_the_retention_keeps(logs):
    write(logs.sources["postfix"][0], postfix_message("4AAAAAA001", day="01") + postfix_message("4AAAAAA002", day="02"))
    _logsearch.update(logs, NOW)
    # 184 days, not 183 (R9.1: 6 calendar months last up to 184 days): still there on the 184th day.
    assert _logsearch.update(logs, datetime(2027, 6, 3, 12, tzinfo=UTC))["expired"] == 0
    assert _logsearch.update(logs, datetime(2027, 6, 4, tzinfo=UTC))["expired"] > 0
    assert [row["queue_id"] for row in find(logs, "address", USER, until="2027-12-31")] == ["4AAAAAA002"]


def test_a_deleted_mailbox_leaves_the_index_and_is_not_indexed_again(logs):
    """R7.2: the purge covers the index; the raw logs keep their lines until their own retention (R9.1)."""
    write(logs.sources["postfix"][0],
          postfix_message("4AAAAAA001") + postfix_message("4AAAAAA002", sender=PEER, to=USER, second=57))
    write(logs.sources["dovecot"][0], [
        f"2026-12-01 21:33:50 imap-login: Info: Login: user=<{USER}>, method=PLAIN, rip={BROWSER}, lip=127.0.0.1, TLS"])
    _logsearch.update(logs, NOW)
    assert len(find(logs, "address", USER)) == 3
    connection = _userdb.connect(logs.user_database)
    _userdb.record_events(connection, [("2026-12-01 22:00:00", USER, "revoked", None, None)])
    connection.commit()
    connection.close()
    assert _logsearch.update(logs, NOW)["purged"] > 0
    # Only the lifecycle's register of the revocation remains (mailbox_event, R11.2).
    assert [(row["kind"], row["status"]) for row in find(logs, "address", USER)] == [("event", "revoked")]
    # The other party's record stays whole, without the deleted address.
    assert [(row["from"], row["to"], row["status"]) for row in find(logs, "address", PEER)] == [
        (_logsearch.ERASED, PEER, "sent"), (PEER, _logsearch.ERASED, "sent")]
    assert _logsearch.update(logs, NOW)["purged"] == 0  # done once
    # A rebuilt index (the old one lost) does not bring them back.
    os.remove(logs.index)
    _logsearch.update(logs, NOW)
    assert [row["kind"] for row in find(logs, "address", USER)] == ["event"]
    with open(logs.sources["postfix"][0], encoding="utf-8") as raw:
        assert USER in raw.read()


def test_the_lifecycles_revocation_purges_at_once_without_indexing(logs):
    """R7.2: sonla-mail-lifecycle calls purge_deleted right after a revocation; new lines wait for the update."""
    assert _logsearch.purge_deleted(logs) == 0  # no index yet: nothing to do, nothing made
    assert not os.path.exists(logs.index)
    write(logs.sources["postfix"][0], postfix_message("4AAAAAA001"))
    _logsearch.update(logs, NOW)
    write(logs.sources["postfix"][0], postfix_message("4AAAAAA002", second=58))
    connection = _userdb.connect(logs.user_database)
    _userdb.record_events(connection, [("2026-12-01 22:00:00", USER, "revoked", None, None)])
    connection.commit()
    connection.close()
    assert _logsearch.purge_deleted(logs) > 0
    index = _logsearch.open_index(logs.index)
    assert index.execute("SELECT count(*) FROM message WHERE sender = ?", (USER,)).fetchone()[0] == 0
    assert index.execute("SELECT count(*) FROM message").fetchone()[0] == 1  # 002 not indexed yet


def test_lifecycle_events_are_found_with_their_request(logs):
    connection = _userdb.connect(logs.user_database)
    _userdb.record_events(connection, [("2026-11-03 08:00:00", USER, "suspended", "12/QĐ-SKHCN", "idle")])
    connection.commit()
    connection.close()
    event, = find(logs, "address", USER.upper())
    assert (event["kind"], event["status"], event["detail"]) == ("event", "suspended", "request=12/QĐ-SKHCN; idle")


def test_the_three_formats_carry_the_same_rows(logs):
    write(logs.sources["postfix"][0], postfix_message("4ABCDEF123"))
    _logsearch.update(logs, NOW)
    rows = find(logs, "address", USER)
    assert json.loads(_logsearch.render(rows, "json")) == rows
    parsed = list(csv.DictReader(io.StringIO(_logsearch.render(rows, "csv"))))
    assert [row["queue_id"] for row in parsed] == ["4ABCDEF123"] and parsed[0]["size"] == "1234"
    table = _logsearch.render(rows, "table").splitlines()
    assert table[0].split()[:3] == ["time", "kind", "from"] and USER in table[1] and table[-1].startswith("(1 records")


@pytest.mark.parametrize("kind, value, message", [
    ("address", "not-an-address", "not a mail address"),
    ("queue_id", "../x", "not a Postfix queue id"),
    ("name", "x", "unknown search kind"),
])
def test_bad_search_values_are_refused_clearly(kind, value, message):
    with pytest.raises(_logsearch.LogSearchError, match=message):
        _logsearch.normalize(kind, value)


def test_dates_are_checked_and_default_to_the_whole_retention():
    assert _logsearch.day_range(None, None, 184, NOW) == ("2026-05-31 00:00:00", "2026-12-03 00:00:00")
    with pytest.raises(_logsearch.LogSearchError, match="YYYY-MM-DD"):
        _logsearch.day_range("01/12/2026", None, 184, NOW)
    with pytest.raises(_logsearch.LogSearchError, match="after"):
        _logsearch.day_range("2026-12-02", "2026-12-01", 184, NOW)


def test_an_unknown_source_in_the_configuration_is_named(tmp_path):
    path = tmp_path / "logsearch.json"
    path.write_text(json.dumps({"sources": {"exim": ["/var/log/exim4/mainlog"]}}), encoding="utf-8")
    with pytest.raises(_logsearch.LogSearchError, match=r"logsearch.json: unknown log sources \['exim'\]"):
        _logsearch.Config.load(str(path))
