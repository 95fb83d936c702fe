#!/usr/bin/env python3
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mail benchmark: delivery rate through the configured stack, rspamd and clamd in the path, against a vanilla stack.

    python bench/mail.py [--messages 1000] [--runs 5] [--image localhost/sonla-debian:bookworm]

Needs podman and the image of scripts/build-image.sh. Two containers from the same image, both scanning every
message with rspamd and ClamAV's clamd, which load the same signatures: the tests' own
(molecule/hygiene/files/sonla-test.ndb), since no signature mirror is reachable here (docs/benchmarks.md), and
their rspamd asking the same resolver: the hygiene tests' unbound on loopback, NXDOMAIN at once outside the test
zones:

* ``sonla-bench-mail``: converged by ``playbooks/site.yml`` from a generated inventory of 1,000 people
  (Postfix with the over-quota lookup at RCPT time -> the rspamd milter with clamd and Redis/Valkey -> LMTP ->
  Dovecot with quota, the Junk Sieve script, sdbox, SQLite user database);
* ``sonla-bench-vanilla``: ``apt-get install postfix dovecot-lmtpd rspamd clamav-daemon`` with the packages'
  defaults, plus the settings without which nothing is delivered or scanned: ``mailbox_transport`` pointing at
  Dovecot's LMTP socket, Debian's ``lmtp`` service out of the chroot so it can reach that socket,
  ``auth_username_format = %Ln`` so Dovecot finds the local user, ``smtpd_milters`` at rspamd's milter
  (Debian's default address), and rspamd's antivirus module at clamd's socket with ``scan_mime_parts = false``
  (by default it sends only attachments to clamd, and the benchmark's messages have none).

In each, ``smtp-source`` (from the postfix package) sends ``--messages`` 4 KiB messages from inside the
container to its own network address (not loopback, so the full stack's rspamd treats the client as outside
and runs every check) over 10 recipients, 2 sessions each; the clock stops when the queue is empty and every
message is in a mailbox. Also the IMAP login latency with a BLF-CRYPT (chosen) and an SSHA512 (initial)
password, and the memory of clamd and rspamd after the runs. Prints one table; containers are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import generate
from podman import inside, sh, start

generate._import_collection()
from ansible_collections.sonla.mail.plugins.module_utils import _password

FULL, VANILLA = "sonla-bench-mail", "sonla-bench-vanilla"
# The tests' signatures (EICAR and a second one), loaded by both stacks' clamd; the empty main.inc and daily.inc
# stand in for the official databases, without which Debian's clamd service does not start (docs/filter.md).
SIGNATURES = os.path.join(ROOT, "molecule", "hygiene", "files", "sonla-test.ndb")
STAND_INS = "mkdir -p /var/lib/clamav/main.inc /var/lib/clamav/daily.inc"
# rspamd's resolver in both stacks, as in the hygiene tests: unbound on loopback, NXDOMAIN at once for every name
# outside the test zones. The containers' own resolver makes each DNS check rspamd runs for an outside client wait
# on a timeout; apt and Postfix keep using it.
RESOLVER_ZONES = os.path.join(ROOT, "molecule", "hygiene", "files", "unbound-test-zones.conf")
RSPAMD_DNS = "127.0.0.1:53"
RECIPIENTS = 10
PASSWORD = "Bench-chi#2025"  # benchmark-only password, set in the throwaway container only


def start_resolver(container: str) -> None:
    """The same answering resolver for both stacks' rspamd, before it starts (docs/benchmarks.md)."""
    sh("podman", "cp", RESOLVER_ZONES, f"{container}:/tmp/sonla-test-zones.conf")
    inside(container, """set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends unbound >/dev/null
install -m 0644 /tmp/sonla-test-zones.conf /etc/unbound/unbound.conf.d/
rm -f /etc/unbound/unbound.conf.d/root-auto-trust-anchor-file.conf
unbound-checkconf >/dev/null
service unbound restart >/dev/null
""")


def write_inventory(inventory: str, groups: dict) -> str:
    """Write the Ansible inventory of the controller (localhost) and ``groups`` (mail_servers and its tiers) to
    ``inventory``'s hosts.yml; returns its path."""
    hosts = {"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                             "ansible_python_interpreter": "{{ ansible_playbook_python }}"}},
                     "children": groups}}
    path = os.path.join(inventory, "hosts.yml")
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(hosts, stream, indent=1)  # JSON is YAML
    return path


def write_hosts(inventory: str, name: str, connection: dict, work: str) -> str:
    """The Ansible inventory of one benchmark mail server reached through ``connection``: self-signed certificates,
    and the filter with the tests' signatures and resolver. Returns its path."""
    server = {**connection, "ansible_python_interpreter": "/usr/bin/python3", "postfix_tls_selfsigned": True,
              "dovecot_tls_selfsigned": True, "webmail_tls_selfsigned": True,
              "mailboxes_handoff_dir": f"{work}/handoff", "filter_freshclam_mirror": "",
              "filter_clamav_local_signatures": [SIGNATURES], "filter_dns_servers": [RSPAMD_DNS]}
    return write_inventory(inventory, {"mail_servers": {"hosts": {name: server}}})


def converge_full(work: str, python: str) -> None:
    inventory = os.path.join(work, "inv")
    shutil.rmtree(inventory, ignore_errors=True)
    generate.generate(1000, 1, inventory)
    write_hosts(inventory, FULL, {"ansible_connection": "containers.podman.podman"}, work)
    inside(FULL, STAND_INS)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_NOCOLOR="1")
    log = os.path.join(work, "converge.log")
    with open(log, "w", encoding="utf-8") as stream:
        code = subprocess.run([os.path.join(os.path.dirname(python), "ansible-playbook"), "-i",
                               os.path.join(inventory, "hosts.yml"), os.path.join(ROOT, "playbooks", "site.yml")],
                              env=env, stdout=stream, stderr=subprocess.STDOUT, cwd=ROOT, check=False).returncode
    if code != 0:
        with open(log, encoding="utf-8") as stream:
            messages = [line.strip() for line in stream if line.strip().startswith("msg:")]
        raise RuntimeError(f"playbooks/site.yml did not converge in {FULL} "
                           f"({messages[-1] if messages else 'see ' + log})")


def prepare_vanilla() -> list[str]:
    sh("podman", "cp", SIGNATURES, f"{VANILLA}:/tmp/{os.path.basename(SIGNATURES)}")
    inside(VANILLA, f"""set -e
export DEBIAN_FRONTEND=noninteractive
echo 'postfix postfix/main_mailer_type select Internet Site' | debconf-set-selections
echo 'postfix postfix/mailname string mail.sonla.gov.vn' | debconf-set-selections
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends postfix dovecot-lmtpd rspamd clamav-daemon >/dev/null
postconf -e 'mailbox_transport = lmtp:unix:/run/dovecot/lmtp'
postconf -F 'lmtp/unix/chroot = n'
sed -i 's/^#auth_username_format.*/auth_username_format = %Ln/' /etc/dovecot/conf.d/10-auth.conf
postconf -e 'smtpd_milters = inet:localhost:11332'
printf 'clamav {{\\n  type = "clamav";\\n  servers = "/run/clamav/clamd.ctl";\\n  scan_mime_parts = false;\\n}}\\n' \\
  > /etc/rspamd/local.d/antivirus.conf
printf 'dns {{\n  nameserver = ["{RSPAMD_DNS}"];\n}}\n' > /etc/rspamd/local.d/options.inc
{STAND_INS}
install -o clamav -g clamav -m 0644 /tmp/{os.path.basename(SIGNATURES)} /var/lib/clamav/
for i in $(seq 1 {RECIPIENTS}); do id u$i >/dev/null 2>&1 || useradd -m u$i; done
service clamav-daemon start >/dev/null; service rspamd start >/dev/null 2>&1
service dovecot start >/dev/null; service postfix start >/dev/null
for i in $(seq 1 60); do [ -S /run/clamav/clamd.ctl ] && break; sleep 1; done
""")
    return [f"u{i}@mail.sonla.gov.vn" for i in range(1, RECIPIENTS + 1)]


def full_recipients() -> list[str]:
    rows = inside(FULL, "sqlite3 /var/lib/sonla-mail/users.sqlite \"SELECT address FROM mailbox WHERE kind='person' "
                        f"AND state='active' ORDER BY address LIMIT {RECIPIENTS}\"")
    return rows.split()


# Runs inside the container, so that no podman exec sits between the clock and the mail.
_THROUGHPUT = """
import json, subprocess, sys, time
messages, users, recipients = json.loads(sys.argv[1])
def delivered():  # in every folder: the full stack files what rspamd marks as spam in Junk
    total = 0
    for user in users:
        out = subprocess.run(["doveadm", "mailbox", "status", "-u", user, "messages", "*"],
                             capture_output=True, text=True).stdout
        total += sum(int(line.split("=")[-1]) for line in out.splitlines() if "messages=" in line)
    return total
address = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()[0]
before, per = delivered(), messages // len(recipients)
start = time.monotonic()
senders = [subprocess.Popen(["smtp-source", "-s", "2", "-m", str(per), "-l", "4096", "-f", "bench@example.org",
                             "-t", rcpt, address + ":25"]) for rcpt in recipients]
for sender in senders:
    sender.wait()
deadline = start + 600
while time.monotonic() < deadline:
    queue = subprocess.run(["postqueue", "-p"], capture_output=True, text=True).stdout.strip().splitlines()
    if queue and "empty" in queue[-1]:
        break
    time.sleep(0.02)
end = time.monotonic()
print(json.dumps({"seconds": end - start, "sent": per * len(recipients), "delivered": delivered() - before}))
"""


def throughput(container: str, recipients: list[str], messages: int) -> float:
    """Messages per second from the first SMTP connection until the queue is empty, all in mailboxes."""
    users = recipients if container == FULL else [address.split("@")[0] for address in recipients]
    done = json.loads(sh("podman", "exec", "-i", container, "python3", "-c", _THROUGHPUT,
                         json.dumps([messages, users, recipients])))
    if done["delivered"] < done["sent"]:
        raise RuntimeError(f"{container}: {done['delivered']} of {done['sent']} messages delivered in 10 minutes")
    return done["sent"] / done["seconds"]


def scanned(container: str) -> int:
    """Messages rspamd has scanned since it started (its controller's counter)."""
    out = inside(container, "rspamc stat")
    return int(next(line.split(":")[1] for line in out.splitlines() if line.startswith("Messages scanned")))


# Resident memory of clamd and rspamd, summed over each one's processes: RSS, and its anonymous part, which
# leaves out the pages rspamd's workers map from the same files (their /proc/<pid>/smaps, which would give
# the proportional size, is closed to root in a container without CAP_SYS_PTRACE; status is open).
_MEMORY = """
import json, os, re
use = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/status") as stream:
            fields = dict(re.findall(r"^(\\w+):\\s+(\\S+)", stream.read(), re.M))
    except OSError:
        continue
    if fields.get("Name") not in ("clamd", "rspamd") or "VmRSS" not in fields:  # not a zombie
        continue
    row = use.setdefault(fields["Name"], {"processes": 0, "rss_kb": 0, "anonymous_kb": 0})
    row["processes"] += 1
    row["rss_kb"] += int(fields["VmRSS"])
    row["anonymous_kb"] += int(fields["RssAnon"])
print(json.dumps(use))
"""


def memory(container: str) -> dict:
    return json.loads(sh("podman", "exec", "-i", container, "python3", "-c", _MEMORY))


def login_latency(scheme: str, count: int = 50) -> float:
    """Median seconds of one IMAP LOGIN (TLS set up first, not counted) from inside the container."""
    hashed = _password.hash_chosen(PASSWORD) if scheme == "BLF-CRYPT" else _password.hash_initial(PASSWORD)
    user = full_recipients()[0]
    sh("podman", "exec", "-i", FULL, "sqlite3", "/var/lib/sonla-mail/users.sqlite",  # stdin: no shell sees the '$'
       input_=f"UPDATE mailbox SET password='{hashed}', must_change=0, password_changed_at=datetime('now') "
              f"WHERE address='{user}';")
    script = f"""
import imaplib, json, ssl, time
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
times = []
for _ in range({count}):
    imap = imaplib.IMAP4_SSL("127.0.0.1", 993, ssl_context=context)
    start = time.monotonic(); imap.login({user!r}, {PASSWORD!r}); times.append(time.monotonic() - start)
    imap.logout()
print(json.dumps(times))
"""
    times = json.loads(sh("podman", "exec", "-i", FULL, "python3", "-", input_=script))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default="localhost/sonla-debian:bookworm")
    parser.add_argument("--work", default="/tmp/sonla-bench-mail")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--keep", action="store_true", help="keep the containers")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    rows: list[tuple[str, str]] = []
    try:
        start(FULL, args.image)
        start(VANILLA, args.image)
        for container in (FULL, VANILLA):
            start_resolver(container)
        converge_full(args.work, args.python)
        vanilla_rcpts = prepare_vanilla()
        full_rcpts = full_recipients()
        full, vanilla = [], []
        scanned_before = {container: scanned(container) for container in (FULL, VANILLA)}
        for _ in range(args.runs):  # alternated, so that a drift of the machine touches both alike
            full.append(throughput(FULL, full_rcpts, args.messages))
            vanilla.append(throughput(VANILLA, vanilla_rcpts, args.messages))
        for container, before in scanned_before.items():  # every message went through rspamd
            if scanned(container) - before < args.runs * args.messages:
                raise RuntimeError(f"{container}: rspamd scanned fewer messages than were delivered")
        for name, rates in (("delivery, full stack (Postfix -> rspamd + clamd -> LMTP -> Dovecot)", full),
                            ("delivery, vanilla Postfix + rspamd + clamd + Dovecot LMTP", vanilla)):
            runs = ", ".join(f"{rate:.0f}" for rate in rates)
            rows.append((name, f"{statistics.median(rates):.1f} msg/s (runs: {runs})"))
        ratio = statistics.median(full) / statistics.median(vanilla)
        rows.append(("ratio full / vanilla (target >= 80%)", f"{100 * ratio:.0f}%"))
        for label, container in (("full stack", FULL), ("vanilla", VANILLA)):
            for name, use in sorted(memory(container).items()):
                value = (f"RSS {use['rss_kb'] / 1024:.0f} MiB over {use['processes']} process(es), "
                         f"{use['anonymous_kb'] / 1024:.0f} MiB anonymous")
                rows.append((f"memory, {name}, {label}", value))
        rows.append(("IMAP login, BLF-CRYPT cost 10 (chosen password)", f"{1000 * login_latency('BLF-CRYPT'):.0f} ms"))
        rows.append(("IMAP login, SSHA512 (initial password)", f"{1000 * login_latency('SSHA512'):.0f} ms"))
    except (RuntimeError, OSError, ValueError) as error:
        reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        done = {row[0] for row in rows}
        for name in ("delivery, full stack", "delivery, vanilla", "ratio full / vanilla", "IMAP login"):
            if not any(row.startswith(name) for row in done):
                rows.append((name, f"not measured: {reason}"))
    finally:
        if not args.keep:
            for container in (FULL, VANILLA):
                sh("podman", "rm", "-f", container, check=False)
    print(f"\nMail benchmark ({args.messages} messages of 4 KiB, {RECIPIENTS} recipients, "
          f"median of {args.runs} runs, {args.image})")
    width = max(len(name) for name, _ in rows)
    print(f"| {'figure'.ljust(width)} | value |\n|{'-' * (width + 2)}|------:|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
