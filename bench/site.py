#!/usr/bin/env python3
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole site as operators run it (issue 19): ``playbooks/site.yml`` with every role, over SSH.

    python bench/site.py                      # 1,000, 10,000 and 50,000 people
    python bench/site.py --sizes 1000         # one size
    python bench/site.py --layout several     # the several-hosts layout of molecule/scaleout (issue 15)

Per size, a new container (``sonla-bench-site``) is reached the way a data-centre host is: sshd with key
authentication, and this checkout's ``ansible.cfg`` (pipelining, ControlPersist). The filter runs as in
bench/mail.py: the tests' ClamAV signatures, and the tests' resolver for rspamd. The steps, each a whole
``ansible-playbook`` run timed from the outside, with each role's share from the tasks' times (bench_timer):

* first: the first converge of a bare server. The package installations (the ``apt`` tasks) are reported
  apart and taken out of the figure, as the issue's target asks. The welcome mails it leaves to the server's
  job are counted, then recorded as sent: the state once the job is done, so that it does not send under the
  steps below;
* noop: ``site.yml`` again, untagged, so every role proves its state;
* add: one person added, ``--tags inventory`` (docs/pipeline.md);
* quota: 1 % of quotas changed, ``--tags inventory``;
* drift: ``--check --diff`` after a hand edit of ``main.cf``, ``dovecot.conf`` and the webmail's nginx site, each
  of which it must report.

noop, add and quota run twice, with Ansible's own ``linear`` strategy and then with Mitogen's ``mitogen_linear``
(``scripts/with-mitogen``, docs/pipeline.md), on the same server.

``--layout several`` converges the layout of molecule/scaleout instead, each host a container reached over SSH: a
front (container ``sonla-bench-front``: the PostgreSQL user database, the MX, the Dovecot proxy, the webmail) and two
mailstores (``sonla-bench-store1``, ``sonla-bench-store2``, the second a webmail host too), with that scenario's host
names, variables and prepare playbook (names, the database's certificates). As there, the filter is off and no
welcome mail is sent; the hand edits of the drift check are made on the front.

Prints one table per size and writes ``WORK/site-results.json``. Method and figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import generate
from mail import STAND_INS, start_resolver, write_hosts, write_inventory
from podman import inside, sh, start
from run import _people, _write_people, machine, run_timed

CONTAINER = "sonla-bench-site"
SCALEOUT = os.path.join(ROOT, "molecule", "scaleout")
# The several-hosts layout: each host's name in molecule/scaleout, whose prepare playbook names them, its container
# here and its groups besides mail_servers.
SEVERAL = {"sonla-scale-front": ("sonla-bench-front", ["db", "mx", "proxy", "webmail"]),
           "sonla-scale-store1": ("sonla-bench-store1", ["mailstore"]),
           "sonla-scale-store2": ("sonla-bench-store2", ["mailstore", "webmail"])}
IMAGE = "localhost/sonla-debian:trixie"
STRATEGIES = ("linear", "mitogen")
STEPS = ("first", *(f"{step} ({strategy})" for strategy in STRATEGIES for step in ("noop", "add", "quota")), "drift")
PACKAGE_ACTIONS = ("apt", "ansible.builtin.apt", "sonla.mail.packages")
HAND_EDIT = "# a hand edit the drift check must find"
with open(os.path.join(ROOT, "roles", "mailboxes", "defaults", "main.yml"), encoding="utf-8") as _defaults:
    USER_DATABASE = yaml.safe_load(_defaults)["mailboxes_database"]  # where the site converge writes it
HAND_EDITED = ("/etc/postfix/main.cf", "/etc/dovecot/dovecot.conf", "/etc/nginx/sites-available/sonla-webmail")


def make_key(work: str) -> str:
    """A new SSH key pair for this run's servers; returns the private key's path."""
    key = os.path.join(work, "id_ed25519")
    for path in (key, key + ".pub"):
        if os.path.exists(path):
            os.unlink(path)
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
    return key


def start_server(container: str, key: str, hostname: str = "mail.sonla.gov.vn") -> dict:
    """A new container with sshd that takes ``key``; returns how Ansible reaches it."""
    start(container, IMAGE, hostname)
    sh("podman", "cp", key + ".pub", f"{container}:/tmp/bench.pub")
    inside(container, """set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends openssh-server >/dev/null
install -d -m 0700 /root/.ssh && install -m 0600 /tmp/bench.pub /root/.ssh/authorized_keys
service ssh start >/dev/null
""")
    address = sh("podman", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container)
    return {"ansible_host": address.strip(), "ansible_user": "root", "ansible_ssh_private_key_file": key,
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}


def one_server(inventory: str, work: str) -> str:
    """The single-host layout: one server with the filter, its stand-ins and resolver; returns the hosts file."""
    connection = start_server(CONTAINER, make_key(work))
    inside(CONTAINER, STAND_INS)
    start_resolver(CONTAINER)
    return write_hosts(inventory, "mail1", connection, work)


def several_groups(connections: dict[str, dict], work: str) -> dict:
    """The groups of the several-hosts layout: molecule/scaleout's hosts, groups and variables, its folder replaced
    by this run's, each host reached through its entry in ``connections``."""
    with open(os.path.join(SCALEOUT, "molecule.yml"), encoding="utf-8") as stream:
        scenario = yaml.safe_load(stream.read().replace("${MOLECULE_EPHEMERAL_DIRECTORY}", work))["provisioner"]
    groups: dict = {group: {"vars": variables} for group, variables in scenario["inventory"]["group_vars"].items()}
    # The scenario asks podman for its containers' addresses; these are the bench's.
    groups["mail_servers"]["vars"]["scaleout_webmail_addresses"] = [
        connections[name]["ansible_host"] for name, (_, tiers) in SEVERAL.items() if "webmail" in tiers]
    for name, (_, tiers) in SEVERAL.items():
        host = {**connections[name], **scenario["inventory"]["host_vars"].get(name, {})}
        for group in ("mail_servers", *tiers):
            groups.setdefault(group, {}).setdefault("hosts", {})[name] = host
    return groups


def several_servers(inventory: str, work: str) -> str:
    """The several-hosts layout of molecule/scaleout, over SSH, prepared by that scenario's prepare playbook;
    returns the hosts file."""
    key = make_key(work)
    connections = {name: start_server(container, key, "mail.sonla.gov.vn" if "db" in tiers else name)
                   for name, (container, tiers) in SEVERAL.items()}
    path = write_inventory(inventory, several_groups(connections, work))
    env = dict(playbook_env(), MOLECULE_EPHEMERAL_DIRECTORY=work)
    run_timed([shutil.which("ansible-playbook") or "ansible-playbook", "-i", path,
               os.path.join(SCALEOUT, "prepare.yml")], env, os.path.join(work, "prepare.log"))
    return path


def playbook_env() -> dict:
    """This checkout's Ansible configuration and collection; Mitogen's SSH connection does not read Ansible's host
    key options, and the containers are new each run."""
    return dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_NOCOLOR="1")


def site(hosts: str, log: str, *options: str, strategy: str = "linear") -> dict:
    """One timed ansible-playbook run of site.yml: wall seconds, per-task seconds and actions."""
    timings, actions = log + ".timings.json", log + ".actions.json"
    env = dict(playbook_env(), ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="bench_timer", BENCH_TIMINGS=timings, BENCH_ACTIONS=actions)
    prefix = [os.path.join(ROOT, "scripts", "with-mitogen")] if strategy == "mitogen" else []
    wall, _ = run_timed([*prefix, shutil.which("ansible-playbook") or "ansible-playbook", "-i", hosts,
                         os.path.join(ROOT, "playbooks", "site.yml"), *options], env, log)
    with open(timings, encoding="utf-8") as stream, open(actions, encoding="utf-8") as names:
        return {"wall": wall, "tasks": json.load(stream), "actions": json.load(names), "changed": changed_tasks(log)}


def changed_tasks(log: str) -> int:
    """The mail servers' changed counts in the play recap, summed: a no-op that changes something is not
    idempotent."""
    with open(log, encoding="utf-8") as stream:
        recap = re.findall(r"^(\S+) +: ok=\d+ +changed=(\d+)", stream.read(), re.MULTILINE)
    if not recap:
        raise SystemExit(f"bench: no play recap in {log}")
    return sum(int(changed) for host, changed in recap if host != "localhost")


def by_role(run: dict) -> dict[str, float]:
    """Seconds per role (the prefix of a role task's name), the play's own tasks under "site.yml"; package
    installations left out (reported apart)."""
    roles: dict[str, float] = {}
    for name, seconds in run["tasks"].items():
        if run["actions"].get(name) in PACKAGE_ACTIONS:
            continue
        role = name.split(" : ", 1)[0].removeprefix("sonla.mail.") if " : " in name else "site.yml"
        roles[role] = roles.get(role, 0.0) + seconds
    return roles


def welcome_left_to_the_job() -> int:
    """How many welcome mails the first converge left to the server's welcome job; they are then recorded as sent.

    The job would deliver them over the next hour or more (about 0.1 s each through the filter), under every later
    step; recorded as sent, the server is in the state it reaches once the job is done, and the steps measure the
    playbook alone."""
    script = f"""import sqlite3
db = sqlite3.connect({USER_DATABASE!r})
left = db.execute("SELECT count(*) FROM mailbox WHERE address NOT IN (SELECT address FROM welcome_mail)").fetchone()[0]
with db:
    db.execute("INSERT INTO welcome_mail (address, sent_at) SELECT address, '2026-01-01 00:00:00' FROM mailbox"
               " WHERE address NOT IN (SELECT address FROM welcome_mail)")
print(left)
"""
    inside(CONTAINER, "pkill -f [s]onla-mail-welcome || true")  # a job cron started already
    return int(sh("podman", "exec", CONTAINER, "python3", "-c", script).strip())


def one_size(size: int, work: str, steps: tuple[str, ...] = STEPS, keep: bool = False, layout: str = "one") -> dict:
    base = os.path.join(work, str(size))
    shutil.rmtree(base, ignore_errors=True)
    inventory = os.path.join(base, "inv")
    generate.generate(size, 1, inventory)
    hosts = (several_servers if layout == "several" else one_server)(inventory, work)
    containers = [container for container, _ in SEVERAL.values()] if layout == "several" else [CONTAINER]
    mail = os.path.join(inventory, "mail")
    _, staff = _people(size, 1)
    figures: dict = {}

    figures["first"] = site(hosts, os.path.join(base, "first.log"))
    if layout == "one":  # several hosts send no welcome mail yet (site.yml)
        figures["first"]["welcome_left"] = welcome_left_to_the_job()
    figures["first"]["packages"] = sum(seconds for name, seconds in figures["first"]["tasks"].items()
                                       if figures["first"]["actions"].get(name) in PACKAGE_ACTIONS)
    if steps == ("first",):
        return _finish(figures, containers, keep)
    rng = random.Random(size)
    # Both no-ops right after the first converge: a tagged run leaves the webmail's address book for its cron.
    for strategy in STRATEGIES:
        figures[f"noop ({strategy})"] = site(hosts, os.path.join(base, f"noop-{strategy}.log"), strategy=strategy)
        if figures[f"noop ({strategy})"]["changed"]:
            raise SystemExit(f"bench: the no-op with {strategy} changed something: {base}/noop-{strategy}.log")
    for strategy in STRATEGIES:
        number = 90000 + len(staff["skhcn"])
        staff["skhcn"].append({"id": f"skhcn-{number}", "name": "Nguyễn Văn An", "organization": "skhcn",
                               "request": f"{number}/QĐ-SKHCN"})
        _write_people(mail, staff)
        figures[f"add ({strategy})"] = site(hosts, os.path.join(base, f"add-{strategy}.log"), "--tags", "inventory",
                                            strategy=strategy)
    for strategy in STRATEGIES:
        everyone = [p for entries in staff.values() for p in entries if p.get("state") != "absent"]
        for person in rng.sample(everyone, max(1, len(everyone) // 100)):
            person["quota_mb"] = {"linear": 3072, "mitogen": 2048}[strategy]
        _write_people(mail, staff)
        figures[f"quota ({strategy})"] = site(hosts, os.path.join(base, f"quota-{strategy}.log"), "--tags", "inventory",
                                              strategy=strategy)
    for path in HAND_EDITED:  # the single host, or the front: the MX, the proxy and a webmail host
        inside(containers[0], f"echo '{HAND_EDIT}' >> {path}")
    figures["drift"] = site(hosts, os.path.join(base, "drift.log"), "--check", "--diff")
    with open(os.path.join(base, "drift.log"), encoding="utf-8") as stream:
        figures["drift"]["found"] = stream.read().count(f"-{HAND_EDIT}") == len(HAND_EDITED)
    return _finish(figures, containers, keep)


def _finish(figures: dict, containers: list[str], keep: bool) -> dict:
    """The figures; the servers are removed unless kept for a look at them."""
    if not keep:
        sh("podman", "rm", "-f", *containers, check=False)
    return figures


def table(size: int, figures: dict, title: str = "") -> str:
    roles = sorted({role for run in figures.values() for role in by_role(run)})
    lines = [f"## {size:,} people, site.yml over SSH{title}", "",
             "| step | whole playbook | " + " | ".join(roles) + " |", "|---|---:|" + "---:|" * len(roles)]
    for step in (step for step in STEPS if step in figures):
        run = figures[step]
        whole = run["wall"] - run.get("packages", 0.0)
        shares = by_role(run)
        cells = [f"{shares.get(role, 0.0):.1f}" for role in roles]
        label = {"first": f"first converge (packages apart: {run.get('packages', 0.0):.0f} s)",
                 "drift": f"drift check (--check; hand edit found: {run.get('found')})"}.get(step, step)
        if "welcome_left" in run:
            label += f"; welcome mails left to the job: {run['welcome_left']:,}"
        lines.append(f"| {label} | {whole:.1f} s | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--work", default=os.path.join(ROOT, "bench", "out", "site"))
    parser.add_argument("--first-only", action="store_true", help="only the first converge")
    parser.add_argument("--layout", choices=("one", "several"), default="one",
                        help="one host, or the several hosts of molecule/scaleout")
    parser.add_argument("--keep", action="store_true", help="leave the servers running at the end")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    results = {}
    print(machine())
    for size in args.sizes:
        results[size] = one_size(size, args.work, ("first",) if args.first_only else STEPS, args.keep, args.layout)
        print(table(size, results[size], ", several hosts" if args.layout == "several" else ""), flush=True)
    with open(os.path.join(args.work, "site-results.json"), "w", encoding="utf-8") as stream:
        json.dump(results, stream, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
