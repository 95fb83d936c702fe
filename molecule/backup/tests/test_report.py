# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Durable result notices (R7.3) and the periodic report (R11.3, R8.3b, R11.2), after test_backup.py.

- A converge whose later task fails has created an account but sent no notice; the next run sends it, once.
- A month of injected events, Postfix and lifecycle logs gives a report whose numbers match counts made another
  way here (from the injected data, and SQL on the database); twice the same files; mailed once; the page
  renders in headless Chromium on the host, whose screenshot is kept in molecule/backup/artifacts/.
- The agency's own page, read as HTML, has the agency's numbers alone, counted by SQL on its organization.
"""

from __future__ import annotations

import csv
import email
import email.policy
import gzip
import io
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from html.parser import HTMLParser

import pytest
from sonla_molecule import postfix_trail, sql, wait_for
from test_backup import DOMAIN, KEPT, PASSWORD, ROOT, imap, playbook, ssha512

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

NEW_PERSON = {"id": "test-0005", "name": "Hà Văn Mới", "organization": "skhcn", "request": "16/TEST-R73"}
PERIOD = "2026-10"
REPORTS = "/var/lib/sonla-mail/reports"
QUOTA_FULL = f"binhtt.skhcn@{DOMAIN}"  # 1 MiB quota in the inventory
SENDERS = [*KEPT, QUOTA_FULL]


@pytest.fixture(scope="module", autouse=True)
def department_login(host):
    """The Department's mailbox reads its notices and reports over IMAP (as after test_backup.py's ``before``)."""
    sql(host, "UPDATE mailbox SET password = ?, must_change = 0 WHERE address = ?", ssha512(PASSWORD), f"skhcn@{DOMAIN}")


def notices_naming(server_ip: str, text: str) -> list[str]:
    """The result notices in the agency's (and Department's) mailbox whose body names ``text``."""
    client = imap(server_ip, f"skhcn@{DOMAIN}")
    try:
        client.select("INBOX", readonly=True)
        _typ, found = client.search("UTF-8", "SUBJECT", b'"Result notice"')
        _typ, summaries = client.search("UTF-8", "SUBJECT", b'"Summary"')
        bodies = []
        for number in found[0].split() + summaries[0].split():
            _typ, data = client.fetch(number, "(BODY.PEEK[])")
            body = email.message_from_bytes(data[0][1], policy=email.policy.default).get_content()
            if text in body:
                bodies.append(body)
        return bodies
    finally:
        client.logout()


@pytest.fixture(scope="module")
def inventory_with_a_new_person(scenario, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("inventory") / "mail"
    shutil.copytree(f"{scenario}/inventory-mail", folder)
    people = folder / "people" / "skhcn.yml"
    people.write_text(people.read_text(encoding="utf-8") + "".join(
        f"{'  - ' if index == 0 else '    '}{key}: \"{value}\"\n" for index, (key, value) in enumerate(NEW_PERSON.items())),
        encoding="utf-8")
    return str(folder)


def test_a_converge_that_fails_later_sends_its_notice_at_the_next_run(host, server_ip, ansible_inventory,
                                                                      inventory_with_a_new_person):
    """R7.3: the notice is built from mailbox_event rows no notice has named, not from the failed run's memory."""
    site = f"{ROOT}/playbooks/site.yml"
    inventory = f"sonla_mail_inventory_path={inventory_with_a_new_person}"
    # The postfix role, after the mailboxes role, refuses a bad variable: the run fails after the converge.
    failed = subprocess.run(["ansible-playbook", "-i", ansible_inventory, site, "-e", inventory,
                             "-e", '{"postfix_log_retention_days": "many"}'],
                            capture_output=True, text=True, timeout=1200, check=False)
    output = failed.stdout + failed.stderr  # ansible-core 2.19 writes the task's error to standard error
    assert failed.returncode != 0 and "postfix_log_retention_days" in output, output[-3000:]
    added = sql(host, "SELECT address, request_ref, notified_at FROM mailbox_event WHERE action = 'added'"
                      " AND request_ref = ?", NEW_PERSON["request"])
    assert len(added) == 1 and added[0]["notified_at"] is None, added
    address = added[0]["address"]
    assert notices_naming(server_ip, address) == []  # the failed run sent nothing

    playbook(ansible_inventory, site, "-e", inventory)
    assert sql(host, "SELECT notified_at FROM mailbox_event WHERE address = ? AND action = 'added'", address)[0]["notified_at"]

    def owed_notices():
        found = notices_naming(server_ip, address)
        if len(found) == 2:
            return found
        # The run's handlers may restart Dovecot just after the notices were queued: a deferred delivery is
        # retried at once, as an operator would (Postfix would retry it within minutes by itself).
        host.run("postqueue -f")
        return None
    try:
        sent = wait_for(owed_notices, "the owed notice and the Department's summary", timeout=90)
    except AssertionError as error:  # what CI could not show when this once timed out
        raise AssertionError(f"{error}: found {notices_naming(server_ip, address)}; "
                             f"{postfix_trail(host, 'skhcn@')}") from error
    assert all(f"(văn bản / request {NEW_PERSON['request']})" in body for body in sent)  # R11.2
    assert sql(host, "SELECT count(*) AS n FROM mailbox_event WHERE notified_at IS NULL AND action IN"
                     " ('added', 'updated', 'suspended', 'restored', 'removed')") == [{"n": 0}]


# --- The report --------------------------------------------------------------------------------------------

def october(day: int, hour: int = 8) -> str:
    return f"2026-10-{day:02d} {hour:02d}:00:00"


# Account changes of the month (what R11.2's lists hold), with the agency's requests; restores name their
# request's date (R8.3b): 2026-10-05 is a Monday.
EVENTS = [
    (october(1), f"annv.skhcn@{DOMAIN}", "added", "101/QĐ-SKHCN", None, None, "skhcn"),
    (october(2), f"cu.skhcn@{DOMAIN}", "added", "102/QĐ-SKHCN", None, None, "skhcn"),
    (october(6), f"annv.skhcn@{DOMAIN}", "updated", "103/QĐ-SKHCN", "quota_mb: 64 -> 128", None, "skhcn"),
    (october(7), f"cu.skhcn@{DOMAIN}", "suspended", "104/QĐ-SKHCN", "Nghỉ phép dài", None, "skhcn"),
    (october(8, 2), f"dungct.skhcn@{DOMAIN}", "suspended", "1/TEST", "by=lifecycle; cause=inactive; idle", None, "skhcn"),
    (october(9), f"dungct.skhcn@{DOMAIN}", "suspended", "105/CATP", "by=operator; cause=compromised; lộ", None, "skhcn"),
    (october(8), f"dungct.skhcn@{DOMAIN}", "restored", "106/QĐ-SKHCN", None, "2026-10-05", "skhcn"),  # 3 days: on time
    (october(16), f"cu.skhcn@{DOMAIN}", "restored", "107/QĐ-SKHCN", None, "2026-10-09", "skhcn"),  # Fri -> Fri: 5, late
    (october(20, 2), f"cu.skhcn@{DOMAIN}", "revoked", "102/QĐ-SKHCN", "suspended_at=2026-09-19", None, "skhcn"),
    (october(21), f"old.skhcn@{DOMAIN}", "removed", "108/QĐ-SKHCN", None, None, None),  # agency unknown
    (october(22), f"annv.skhcn@{DOMAIN}", "password_reminder", None, "days=7", None, "skhcn"),  # not an account change
    ("2026-09-30 23:59:59", f"annv.skhcn@{DOMAIN}", "updated", "100/QĐ", "x", None, "skhcn"),  # outside
    ("2026-11-01 00:00:00", f"annv.skhcn@{DOMAIN}", "updated", "109/QĐ", "x", None, "skhcn"),  # outside
]


def mail_log(rng: random.Random) -> tuple[str, Counter]:
    """A month of Postfix log lines as postlogd writes them, shuffled, and what they hold, counted as written."""
    lines, expected = [], Counter()
    queue = iter(f"{number:010X}" for number in range(1, 10_000))

    def stamp(day: int, month: str = "Oct") -> str:
        return f"{month} {day:>2} {rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d} mail.sonla.gov.vn"

    for _ in range(41):
        qid, sender, day = next(queue), rng.choice(SENDERS), rng.randint(1, 31)
        lines.append(f"{stamp(day)} postfix/submission/smtpd[{rng.randrange(9999)}]: {qid}: client=unknown[10.0.0.9],"
                     f" sasl_method=PLAIN, sasl_username={sender}")
        lines.append(f"{stamp(day)} postfix/qmgr[90]: {qid}: from=<{sender}>, size=1234, nrcpt=1 (queue active)")
        lines.append(f"{stamp(day)} postfix/smtp[91]: {qid}: to=<x@example.org>, relay=none, status=deferred (no DNS)")
        expected["sent"] += 1
    for _ in range(67):
        lines.append(f"{stamp(rng.randint(1, 31))} postfix/lmtp[92]: {next(queue)}: to=<{rng.choice(SENDERS)}>, "
                     "relay=mail.sonla.gov.vn[private/dovecot-lmtp], delay=0.2, dsn=2.0.0, status=sent (250 2.0.0 Saved)")
        expected["received"] += 1
    for _ in range(5):  # deferred, or to an address the system never had: no agency's mail
        lines.append(f"{stamp(3)} postfix/lmtp[92]: {next(queue)}: to=<{rng.choice(SENDERS)}>, relay=x, status=deferred (x)")
        lines.append(f"{stamp(3)} postfix/lmtp[92]: {next(queue)}: to=<nobody@{DOMAIN}>, relay=x, status=sent (250 ok)")
    for kind, count, reply in (("spam", 7, "Thu bi tu choi vi la thu rac / Message refused as spam"),
                               ("malware", 3, "Thu co ma doc / Message refused: malware Sonla.Test.EICAR")):
        for _ in range(count):
            lines.append(f"{stamp(rng.randint(1, 31))} postfix/cleanup[93]: {next(queue)}: milter-reject: END-OF-MESSAGE "
                         f"from unknown[203.0.113.7]: 5.7.1 {reply}; from=<s@spam.example> to=<{rng.choice(SENDERS)}> "
                         "proto=ESMTP helo=<spam.example>")
            expected[kind] += 1
    for day, month in ((30, "Sep"), (1, "Nov")):  # the days around the month
        lines.append(f"{stamp(day, month)} postfix/lmtp[92]: {next(queue)}: to=<{KEPT[0]}>, relay=x, status=sent (250 ok)")
    rng.shuffle(lines)
    return "\n".join(lines) + "\n", expected


def lifecycle_log() -> tuple[str, dict]:
    """The lifecycle's daily JSON lines of the month, with the backup's age (R10.2c)."""
    runs = []
    for day in range(1, 32):
        age = 30.0 if day == 12 else 1.0 + day / 10
        runs.append({"now": october(day, 2), "backup": {"ok": age < 26, "age_hours": age,
                                                        "last_good_at": f"2026-10-{day:02d} 01:00:00"}})
    text = "".join(json.dumps(run) + "\n" for run in runs) + '{"now": "2026-11-01 02:00:00", "backup": {"age_hours": 99}}\n'
    return text, {"last": runs[-1]["backup"], "max": max(run["backup"]["age_hours"] for run in runs),
                  "failed": sum(1 for run in runs if not run["backup"]["ok"])}


def put_gzip(container: str, text: str, path: str) -> None:
    with tempfile.NamedTemporaryFile(suffix=".gz") as local:
        with gzip.open(local.name, "wt", encoding="utf-8") as stream:
            stream.write(text)
        subprocess.run(["podman", "cp", local.name, f"{container}:{path}"], check=True, capture_output=True)


def read_csv(host, name: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(host.file(f"{REPORTS}/{PERIOD}/{name}").content_string)))


def folder_bytes(host, address: str) -> int:
    local = address.split("@")[0]
    out = host.run(f"find /var/vmail/{DOMAIN}/{local} -type f -printf '%s\\n'").stdout.split()
    return sum(int(size) for size in out)


@pytest.fixture(scope="module")
def injected(host, container, server_ip):
    """October 2026 in the database and the logs; the mailboxes made older than the month."""
    sql(host, "UPDATE mailbox SET created_at = '2026-01-01 00:00:00', last_login_at = '2026-10-25 09:00:00'")
    sql(host, "UPDATE mailbox SET last_login_at = '2026-08-01 09:00:00' WHERE address = ?", f"dungct.skhcn@{DOMAIN}")
    sql(host, "UPDATE mailbox SET last_login_at = NULL WHERE address = ?", f"skhcn@{DOMAIN}")
    sql(host, "UPDATE mailbox SET state = 'suspended', suspended_by = 'operator', suspended_at = '2026-10-20 02:00:00',"
              " suspended_reason = 'Kiểm thử' WHERE address = ?", QUOTA_FULL)
    for at, address, action, ref, detail, requested, organization in EVENTS:
        sql(host, "INSERT INTO mailbox_event (at, address, action, request_ref, detail, requested_at, organization,"
                  " notified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", at, address, action, ref, detail, requested,
            organization, at)
    # Near full (R9.2a): one message of 97 % of the 1 MiB quota; a suspended account still receives (R8.1).
    big = "print('From: vanthu@sonla.gov.vn\\nSubject: large\\n'); print(('x' * 99 + '\\n') * 10_180)"
    assert host.run("python3 -c %s | /usr/sbin/sendmail -oi -f vanthu@sonla.gov.vn %s", big, QUOTA_FULL).rc == 0
    wait_for(lambda: folder_bytes(host, QUOTA_FULL) > 1_000_000, "the large message's delivery")
    log, counted = mail_log(random.Random(16))
    put_gzip(container, log, "/var/log/postfix/mail.log.4.gz")
    daily, backup = lifecycle_log()
    host.run("mkdir -p /var/log/sonla-mail")
    put_gzip(container, daily, "/var/log/sonla-mail/lifecycle.log.3.gz")
    host.run(f"rm -rf {REPORTS}/{PERIOD}")
    return {"mail": counted, "backup": backup}


def test_the_report_of_a_month_has_the_numbers_counted_another_way(host, ansible_inventory, injected, server_ip):
    """R11.3 with R11.2's references and R8.3b's restore times; counted here from what was injected and by SQL."""
    report = f"{ROOT}/playbooks/report.yml"
    output = playbook(ansible_inventory, report, "-e", f"sonla_mail_report_period={PERIOD}")
    assert f"{REPORTS}/{PERIOD}" in output and re.search(r"mailed\s+to\s+skhcn@sonla\.gov\.vn", output), output[-2000:]

    # Account changes: the injected list, and SQL's own count of the month's rows.
    changes = Counter(action for at, _, action, *_ in EVENTS if at.startswith(PERIOD) and action != "password_reminder")
    by_sql = {row["action"]: row["n"] for row in sql(
        host, "SELECT action, count(*) AS n FROM mailbox_event WHERE at >= '2026-10-01' AND at < '2026-11-01'"
              " AND action IN ('added', 'updated', 'suspended', 'restored', 'revoked', 'removed') GROUP BY action")}
    assert by_sql == dict(changes)
    agencies = {row["agency"]: row for row in read_csv(host, "agencies.csv")}
    assert sorted(agencies) == ["(không rõ)", "skhcn"]
    for action, count in changes.items():
        assert sum(int(row[action]) for row in agencies.values()) == count, action
    assert agencies["(không rõ)"]["removed"] == "1"
    events = read_csv(host, "events.csv")
    assert [(row["action"], row["request_ref"]) for row in events] == [
        (action, ref) for at, _, action, ref, *_ in sorted(EVENTS) if at.startswith(PERIOD) and action in changes]
    assert all(row["request_ref"] for row in events)  # R11.2: every change with its request
    assert Counter(row["cause"] for row in events if row["action"] == "suspended") == {
        "request": 1, "inactive": 1, "compromised": 1}

    # R8.3b: Monday's request restored on Thursday is on time; Friday's restored the next Friday is late.
    restores = [(row["request_ref"], row["working_days"], row["on_time"]) for row in read_csv(host, "restores.csv")]
    assert restores == [("106/QĐ-SKHCN", "3", "True"), ("107/QĐ-SKHCN", "5", "False")]

    # Mail of the month: as generated, not as parsed.
    skhcn = agencies["skhcn"]
    assert {key: int(skhcn[key]) for key in ("sent", "received", "spam", "malware")} == dict(injected["mail"])

    # The state at the month's end, by SQL; the near-full mailboxes from the folder sizes find(1) gives.
    inactive = {row["address"] for row in sql(
        host, "SELECT address FROM mailbox WHERE state = 'active' AND"
              " julianday('2026-11-01') - julianday(COALESCE(last_login_at, created_at)) >= 30")}
    assert {row["address"] for row in read_csv(host, "inactive.csv")} == inactive and inactive
    near = sql(host, "SELECT address, date(suspended_at, '+30 days') AS revoke_on FROM mailbox"
                     " WHERE suspended_by IN ('lifecycle', 'operator')")
    assert [(row["address"], row["revoke_on"]) for row in read_csv(host, "near_revocation.csv")] == [
        (row["address"], row["revoke_on"]) for row in near] and near
    quotas = sql(host, "SELECT address, quota_mb FROM mailbox")
    full = {row["address"] for row in quotas if folder_bytes(host, row["address"]) >= 0.95 * row["quota_mb"] * 1_048_576}
    assert {row["address"] for row in read_csv(host, "quota_near_full.csv")} == full == {QUOTA_FULL}

    page = host.file(f"{REPORTS}/{PERIOD}/report.html").content_string
    backup = injected["backup"]
    assert f"Bản sao lưu tốt gần nhất: {backup['last']['last_good_at']}" in page
    assert f"tuổi lớn nhất trong kỳ: {backup['max']} giờ" in page and f"{backup['failed']}/31" in page

    # The same period gives the same files, and is not mailed again.
    digests = host.run(f"sha256sum {REPORTS}/{PERIOD}/*").stdout
    again = playbook(ansible_inventory, report, "-e", f"sonla_mail_report_period={PERIOD}")
    assert re.search(r"mailed\s+to\s+nobody", again) and host.run(f"sha256sum {REPORTS}/{PERIOD}/*").stdout == digests

    def mailed() -> int:
        client = imap(server_ip, f"skhcn@{DOMAIN}")
        try:
            client.select("INBOX", readonly=True)
            return len(client.search("UTF-8", "SUBJECT", b'"10/2026"')[1][0].split())
        finally:
            client.logout()
    assert wait_for(lambda: mailed() == 1, "the report in the Department's mailbox", timeout=60)


def html_tables(page: str) -> list[list[list[str]]]:
    """Every table of a page as rows of cell texts, read from the HTML as a browser would."""
    class Reader(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr":
                self.tables[-1].append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.tables[-1][-1].append(self.cell)
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    reader = Reader()
    reader.feed(page)
    return reader.tables


def test_an_agency_page_has_the_agencys_numbers_alone(host, injected):
    """R11.3 per agency: agency-skhcn.html, written beside report.html by the run above, against SQL on the
    events of its organization; the removal of an address of no known agency is the province's alone."""
    page = host.file(f"{REPORTS}/{PERIOD}/agency-skhcn.html").content_string
    assert "<title>Báo cáo hệ thống thư điện tử tỉnh Sơn La - Sở Khoa học và Công nghệ - Tháng 10/2026</title>" in page
    tables = html_tables(page)
    summary = [int(count) for _, count in tables[0][1:]]
    by_sql = {row["action"]: row["n"] for row in sql(
        host, "SELECT action, count(*) AS n FROM mailbox_event WHERE at >= '2026-10-01' AND at < '2026-11-01'"
              " AND organization = 'skhcn' GROUP BY action")}
    expected = [by_sql.get(action, 0) for action in ("added", "updated", "suspended", "restored", "revoked", "removed")]
    assert summary == expected + [injected["mail"][key] for key in ("sent", "received", "spam", "malware")]
    assert expected[5] == 0 and sum(expected) == len(EVENTS) - 4  # old.skhcn's removal is of no known agency
    changes = sql(host, "SELECT address, request_ref FROM mailbox_event WHERE at >= '2026-10-01' AND at < '2026-11-01'"
                        " AND organization = 'skhcn' AND action <> 'password_reminder' ORDER BY at, id")
    assert [(row[1], row[4]) for row in tables[-1][1:]] == [(row["address"], row["request_ref"]) for row in changes]
    assert f"old.skhcn@{DOMAIN}" not in page and "svg" in page


def test_the_report_renders_in_headless_chromium(host, artifacts):
    """The page is self-contained: opened from a file, its three SVG charts and tables are drawn."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    path = os.path.join(artifacts, f"report-{PERIOD}.html")
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(host.file(f"{REPORTS}/{PERIOD}/report.html").content_string)
    profile = tempfile.mkdtemp(prefix="sonla-report-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", f"--user-data-dir={profile}", "--window-size=1300,2400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    try:
        driver.get(f"file://{path}")
        assert "Tháng 10/2026" in driver.title
        sizes = driver.execute_script(
            "return [...document.querySelectorAll('svg')].map(s => [s.getBoundingClientRect().width,"
            " s.getBoundingClientRect().height, s.querySelectorAll('path, rect, use').length]);")
        assert len(sizes) == 3 and all(width > 200 and height > 100 and shapes > 5 for width, height, shapes in sizes), sizes
        assert "Sở Khoa học và Công nghệ" in driver.find_element("tag name", "body").text
        driver.save_screenshot(os.path.join(artifacts, f"report-{PERIOD}.png"))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    assert os.path.getsize(os.path.join(artifacts, f"report-{PERIOD}.png")) > 10_000
