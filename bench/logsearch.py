#!/usr/bin/env python3
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measure the log search at the province's scale (figures for docs/benchmarks.md, docs/logs.md; R9.1).

Usage: python bench/logsearch.py [--dir /var/tmp/sonla-logbench] [--days 184] [--messages-per-day 12000]

Writes 6 months of Postfix, Dovecot, rspamd and nginx logs as logrotate leaves them (one file a day,
``-YYYYMMDD.gz``, the newest rotation uncompressed by delaycompress, today's live file), in the formats the
roles write, for 50,000 mailboxes; then measures building the index from nothing, one day's incremental
update, and a search for one address over the whole 6 months next to ``zgrep`` over the same files.
Prints the figures; the generated files stay in --dir unless --clean.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".collections"))

from ansible_collections.sonla.mail.plugins.module_utils import _logsearch

USERS = 50_000
DOMAIN = "sonla.gov.vn"
AVERAGE = "user04242.cq042@sonla.gov.vn"  # an ordinary mailbox, as likely as any other
BUSY = "vanthu.cq001@sonla.gov.vn"  # an agency's secretariat: 1 % of all mail
SOURCES = {"postfix": "mail.log", "dovecot": "dovecot.log", "rspamd": "rspamd.log", "nginx_access": "access.log"}


def address(number: int) -> str:
    return f"user{number:05d}.cq{number % 120:03d}@{DOMAIN}"


def day_lines(rng: random.Random, day: datetime, messages: int, logins: int, counter: list[int]) -> dict[str, list[str]]:
    """One day of every source: messages in and out (1-3 recipients), IMAP logins (5 % failed), webmail requests."""
    out: dict[str, list[str]] = {source: [] for source in SOURCES}
    events = sorted([(rng.random() * 86_400, "message") for _ in range(messages)]
                    + [(rng.random() * 86_400, "login") for _ in range(logins)])
    postfix, dovecot, rspamd, nginx = out["postfix"], out["dovecot"], out["rspamd"], out["nginx_access"]
    for offset, kind in events:
        moment = day + timedelta(seconds=offset)
        syslog = moment.strftime("%b %d %H:%M:%S") + f".{moment.microsecond:06d} mail "
        iso = moment.strftime("%Y-%m-%d %H:%M:%S")
        user = BUSY if rng.random() < 0.01 else address(rng.randrange(USERS))
        ip = f"10.{rng.randrange(1, 250)}.{rng.randrange(250)}.{rng.randrange(1, 250)}"
        if kind == "login":
            if rng.random() < 0.05:
                dovecot.append(f"{iso} imap-login: Info: Login aborted: Connection closed (auth failed, 1 attempts in 2 secs) "
                               f"(auth_failed): user=<{user}>, method=PLAIN, rip={ip}, lip=10.0.0.2, TLS, "
                               f"session=<x{offset:.0f}>")
            else:
                dovecot.append(f"{iso} imap-login: Info: Login: user=<{user}>, method=PLAIN, rip={ip}, lip=10.0.0.2, "
                               f"mpid={rng.randrange(99999)}, TLS, session=<x{offset:.0f}>")
            continue
        counter[0] += 1
        qid = f"{counter[0]:010X}"
        mid = f"{counter[0]:x}.{day:%Y%m%d}@{DOMAIN}"
        outgoing = rng.random() < 0.3
        pid = rng.randrange(1000, 99999)
        if outgoing:  # a staff member sends, half of them from the webmail (XCLIENT: the browser's address)
            sender, service = user, "submissions/smtpd"
            recipients = [address(rng.randrange(USERS)) if rng.random() < 0.6 else f"contact{rng.randrange(5000)}@example.org"
                          for _ in range(rng.choice((1, 1, 1, 2, 3)))]
            postfix.append(f"{syslog}postfix/submissions/smtpd[{pid}]: connect from unknown[{ip}]")
            postfix.append(f"{syslog}postfix/submissions/smtpd[{pid}]: {qid}: client=unknown[{ip}], sasl_method=PLAIN, "
                           f"sasl_username={sender}")
            if rng.random() < 0.5:
                nginx.append(f'{ip} - - [{moment:%d/%b/%Y:%H:%M:%S} +0000] "POST /?_task=mail&_action=send HTTP/2.0" 200 512 '
                             f'"https://mail.{DOMAIN}/?_task=mail&_action=compose" "Mozilla/5.0"')
        else:
            sender, service = f"news{rng.randrange(3000)}@example{rng.randrange(40)}.org", "smtpd"
            recipients = [user] + [address(rng.randrange(USERS)) for _ in range(rng.choice((0, 0, 0, 1, 2)))]
            postfix.append(f"{syslog}postfix/smtpd[{pid}]: connect from mx.example.org[{ip}]")
            postfix.append(f"{syslog}postfix/smtpd[{pid}]: {qid}: client=mx.example.org[{ip}]")
        size = rng.randrange(2_000, 3_000_000)
        postfix.append(f"{syslog}postfix/cleanup[{pid + 1}]: {qid}: message-id=<{mid}>")
        score = rng.random() * 8 - 2
        rspamd.append(f"{iso} #{pid}(rspamd_proxy) <{qid[-6:].lower()}>; proxy; rspamd_task_write_log: id: <{mid}>, "
                      f"qid: <{qid}>, ip: {ip}, from: <{sender}>, (default: F (no action): [{score:.2f}/15.00] "
                      f"[ARC_NA(0.00){{}},MIME_GOOD(-0.10){{text/plain}}]), len: {size}, time: 41.2ms, dns req: 12, "
                      f"digest: <{counter[0]:032x}>, rcpts: <{recipients[0]}>, mime_rcpts: <{recipients[0]}>")
        postfix.append(f"{syslog}postfix/qmgr[77]: {qid}: from=<{sender}>, size={size}, nrcpt={len(recipients)} (queue active)")
        for recipient in recipients:
            if recipient.endswith(DOMAIN):
                postfix.append(f"{syslog}postfix/lmtp[{pid + 2}]: {qid}: to=<{recipient}>, relay=mail.{DOMAIN}"
                               f"[private/dovecot-lmtp], delay=0.2, delays=0.1/0/0/0.1, dsn=2.0.0, status=sent "
                               f"(250 2.0.0 <{recipient}> Saved)")
                dovecot.append(f"{iso} lmtp({recipient})<{pid + 2}><abc>: Info: sieve: msgid=<{mid}>: stored mail into "
                               f"mailbox 'INBOX'")
            elif rng.random() < 0.03:
                postfix.append(f"{syslog}postfix/smtp[{pid + 3}]: {qid}: to=<{recipient}>, relay=none, delay=30, "
                               f"delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to example.org[192.0.2.1]:25: "
                               f"Connection timed out)")
            else:
                postfix.append(f"{syslog}postfix/smtp[{pid + 3}]: {qid}: to=<{recipient}>, relay=mx.example.org[192.0.2.1]:25, "
                               f"delay=1.1, delays=0.1/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ABC)")
        postfix.append(f"{syslog}postfix/qmgr[77]: {qid}: removed")
        postfix.append(f"{syslog}postfix/{service}[{pid}]: disconnect from unknown[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 "
                       f"commands=5")
    return out


def generate(folder: str, days: int, messages: int, logins: int, today: datetime) -> int:
    """The files logrotate would have left after ``days`` days; the number of lines written."""
    rng = random.Random(16)
    counter = [0]
    total = 0
    for index in range(days, -1, -1):
        day = today - timedelta(days=index)
        lines = day_lines(rng, day, messages, logins, counter)
        rotated = day + timedelta(days=1)  # logrotate's date: the day it rotated
        for source, name in SOURCES.items():
            text = "".join(line + "\n" for line in lines[source])
            total += len(lines[source])
            if index == 0:
                path = os.path.join(folder, name)  # today's live file
            elif index == 1:
                path = os.path.join(folder, f"{name}-{rotated:%Y%m%d}")  # delaycompress: yesterday's stays plain
            else:
                path = os.path.join(folder, f"{name}-{rotated:%Y%m%d}.gz")
            if path.endswith(".gz"):
                with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as stream:
                    stream.write(text)
            else:
                with open(path, "w", encoding="utf-8") as stream:
                    stream.write(text)
            stamp = min(rotated, today + timedelta(hours=23)).timestamp()
            os.utime(path, (stamp, stamp))
    return total


def timed(function, *args):
    start = time.monotonic()
    result = function(*args)
    return time.monotonic() - start, result


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def zgrep(folder: str, needle: str) -> tuple[float, float, int]:
    """Wall and CPU seconds (zgrep's gzip and grep processes) and the lines found."""
    files = sorted(os.path.join(folder, name) for name in os.listdir(folder))
    start, processor = time.monotonic(), children_cpu()
    result = subprocess.run(["zgrep", "-h", "-F", needle, *files], capture_output=True, check=False)
    return time.monotonic() - start, children_cpu() - processor, result.stdout.count(b"\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/var/tmp/sonla-logbench")
    parser.add_argument("--days", type=int, default=184)
    parser.add_argument("--messages-per-day", type=int, default=12_000)
    parser.add_argument("--logins-per-day", type=int, default=8_000)
    parser.add_argument("--clean", action="store_true", help="delete the generated logs and index afterwards")
    parser.add_argument("--searches-only", action="store_true",
                        help="measure the searches again on the logs and index a previous run left in --dir")
    args = parser.parse_args()

    logs = os.path.join(args.dir, "log")
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"SQLite {_logsearch.sqlite3.sqlite_version}, load {os.getloadavg()[0]:.1f}", flush=True)
    config = _logsearch.Config(index=os.path.join(args.dir, "index.sqlite"), retention_days=args.days,
                               user_database="", sources={source: [os.path.join(logs, name)] for source, name in SOURCES.items()})
    if not args.searches_only:
        build(args, config, logs)
    searches(args, config, logs)
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    if args.clean:
        shutil.rmtree(args.dir, ignore_errors=True)
    return 0


def build(args, config: _logsearch.Config, logs: str) -> None:
    shutil.rmtree(args.dir, ignore_errors=True)
    os.makedirs(logs)
    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    seconds, lines = timed(generate, logs, args.days, args.messages_per_day, args.logins_per_day, today)
    size = sum(os.path.getsize(os.path.join(logs, name)) for name in os.listdir(logs))
    print(f"generated: {lines:,} lines, {args.days + 1} days, {len(os.listdir(logs))} files, "
          f"{size / 1e6:,.0f} MB on disk, in {seconds:.0f} s", flush=True)
    seconds, result = timed(_logsearch.update, config)
    indexed = sum(result["lines"].values())
    print(f"index build: {indexed:,} lines in {seconds:.0f} s = {indexed / seconds:,.0f} lines/s; "
          f"index {os.path.getsize(config.index) / 1e6:,.0f} MB", flush=True)

    # One more day arrives: what the hourly cron does, at worst a whole day at once.
    live = {source: os.path.join(logs, name) for source, name in SOURCES.items()}
    extra = day_lines(random.Random(17), today + timedelta(hours=1), args.messages_per_day, args.logins_per_day, [10**9])
    for source, path in live.items():
        with open(path, "a", encoding="utf-8") as stream:
            stream.write("".join(line + "\n" for line in extra[source]))
    seconds, result = timed(_logsearch.update, config)
    added = sum(result["lines"].values())
    print(f"incremental update: {added:,} new lines (one day) in {seconds:.1f} s = {added / seconds:,.0f} lines/s", flush=True)


def searches(args, config: _logsearch.Config, logs: str) -> None:
    since, until = _logsearch.day_range(None, None, args.days)
    for label, needle in (("average mailbox", AVERAGE), ("busy mailbox (1 % of all mail)", BUSY)):
        connection = _logsearch.open_index(config.index)
        runs, processor = [], []
        for _ in range(3):
            start = time.process_time()
            seconds, rows = timed(_logsearch.search, connection, "address", needle, since, until)
            runs.append(seconds)
            processor.append(time.process_time() - start)  # what it costs a core of its own: a loaded machine's wait left out
        connection.close()
        search_seconds = sorted(runs)[1]
        grep_seconds, grep_processor, grep_lines = zgrep(logs, needle)
        print(f"search {label} {needle}: {len(rows):,} records in {search_seconds:.3f} s (median of 3; first "
              f"{runs[0]:.3f} s; CPU {sorted(processor)[1]:.3f} s); "
              f"zgrep -F: {grep_lines:,} raw lines in {grep_seconds:.1f} s (CPU {grep_processor:.1f} s); "
              f"{grep_seconds / search_seconds:,.0f}x faster (CPU: {grep_processor / sorted(processor)[1]:,.0f}x)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
