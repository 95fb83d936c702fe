# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The merge-request pipeline end to end (issue 19, docs/pipeline.md), against this scenario's converged server.

An agency's merge request in a local bare Git repository adds one person; scripts/mr-pipeline lints it against
the target branch (R11.2), plans it in check and diff mode (the plan names exactly that mailbox, and also the
hand edits on the server that merging would undo: the drift check covers every role), then applies it on merge
with --tags inventory. Runs after test_lifecycle.py (file order), on the state that file leaves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from sonla_molecule import sql, write_test_inventory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PIPELINE = os.path.join(ROOT, "scripts", "mr-pipeline")
NEW_PERSON = """  - id: lc-0100
    name: Lò Thị Mới
    organization: skhcn
    request: "7/QĐ-SKHCN"
"""
NEW_ADDRESS = "moilt.skhcn@sonla.gov.vn"  # R5.2: given name, initials of the rest, the agency
HAND_EDITED = {  # a file of each kind a no-op must still prove: Postfix, Dovecot, the webmail's nginx site
    "/etc/postfix/main.cf": "sonla.mail.postfix",
    "/etc/dovecot/dovecot.conf": "sonla.mail.dovecot",
    "/etc/nginx/sites-available/sonla-webmail": "sonla.mail.webmail",
}
HAND_EDIT = "# edited by hand on the server"


def git(folder, *args) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=Agency", "-c", "user.email=agency@sonla.invalid",
                           *args], capture_output=True, text=True, check=True).stdout


def pipeline(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, PIPELINE, *args], capture_output=True, text=True, cwd=cwd, timeout=1200, check=False,
                          env={**os.environ})


@pytest.fixture(scope="module")
def merge_request(container, scenario, tmp_path_factory):
    """A clone of the province's inventory repository on a branch that adds one person, the way an agency
    prepares it: the person, and the pinned address `lint-inventory --allocate` writes."""
    top = tmp_path_factory.mktemp("forge")
    git(top, "init", "-q", "--bare", "-b", "main", "origin.git")
    clone = top / "clone"
    git(top, "clone", "-q", "origin.git", "clone")
    inventory = clone / "inventories" / "test"
    shutil.copytree(f"{scenario}/inventory-mail", inventory / "mail")
    hosts = json.loads(open(write_test_inventory(inventory, container, scenario), encoding="utf-8").read())
    del hosts["all"]["hosts"]["localhost"]["sonla_mail_inventory_path"]  # site.yml's default: the inventory's mail/
    (inventory / "hosts.yml").write_text(json.dumps(hosts, indent=1), encoding="utf-8")
    git(clone, "add", ".")
    git(clone, "commit", "-qm", "The province's inventory")
    git(clone, "push", "-q", "origin", "main")

    git(clone, "switch", "-q", "-c", "add-person")
    with open(inventory / "mail" / "people" / "test.yml", "a", encoding="utf-8") as people:
        people.write(NEW_PERSON)
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "lint-inventory"), "--allocate", str(inventory)],
                   check=True)
    git(clone, "commit", "-qam", "Sở KH&CN: Lò Thị Mới (7/QĐ-SKHCN)")
    git(clone, "push", "-q", "origin", "add-person")
    git(clone, "fetch", "-q", "origin")
    return clone, inventory


def test_the_merge_request_is_linted_against_its_target_branch(merge_request):
    clone, inventory = merge_request
    lint = pipeline("lint", "--base", "origin/main", str(inventory), cwd=clone)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert git(clone, "diff", "--name-only", "origin/main").split() == [
        "inventories/test/mail/addresses.lock.yml", "inventories/test/mail/people/test.yml"]


def test_the_plan_shows_exactly_the_new_mailbox_and_every_hand_edit(host, merge_request, tmp_path):
    clone, inventory = merge_request
    try:
        for path in HAND_EDITED:
            host.run_expect([0], "cp -p %s %s.before-test && printf '%%s\\n' %s >> %s", path, path, HAND_EDIT, path)
        plan = pipeline("plan", "--out", str(tmp_path), str(inventory), cwd=clone)
        after_plan = {path: host.file(path).content_string for path in HAND_EDITED}
    finally:
        for path in HAND_EDITED:  # what apply would do; here without a whole converge
            host.run("mv %s.before-test %s", path, path)
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    assert all(HAND_EDIT in text for text in after_plan.values())  # check mode changed nothing
    assert sql(host, "SELECT address FROM mailbox WHERE address = ?", NEW_ADDRESS) == []

    comment = (tmp_path / "plan.md").read_text(encoding="utf-8")
    mailbox_lines = [line.strip() for line in comment.splitlines() if re.match(r"\s+[-+][a-z0-9.]+@", line)]
    assert mailbox_lines == [f"+{NEW_ADDRESS}: Lò Thị Mới (skhcn, {_quota(inventory)} MB, active)"], comment
    for path, role in HAND_EDITED.items():  # the drift check: each hand edit is named, under its role
        assert re.search(rf"^- {re.escape(role)} : .*\n(  .*\n)*?  -{re.escape(HAND_EDIT)}$", comment, re.MULTILINE), (
            path, comment)
    assert json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))["stats"]


def test_on_merge_only_the_inventory_roles_converge_and_add_the_mailbox(host, merge_request):
    clone, inventory = merge_request
    git(clone, "switch", "-q", "main")
    git(clone, "merge", "-q", "--ff-only", "add-person")
    started = time.monotonic()
    apply = pipeline("apply", "--base", "HEAD~1", str(inventory), cwd=clone)
    elapsed = time.monotonic() - started
    assert apply.returncode == 0, apply.stdout[-3000:] + apply.stderr[-3000:]
    assert "--tags inventory" in apply.stdout
    # Only the inventory's roles ran: the others are skipped whole, even the check of their arguments that Ansible
    # tags always (site.yml's __sonla_every_role, issue 19).
    postfix_tasks = re.findall(r"^TASK \[sonla\.mail\.postfix : ([^\]]*)\] \**\n(\w+):", apply.stdout, re.MULTILINE)
    assert postfix_tasks and all(name.startswith("Validating arguments") and status == "skipping"
                                 for name, status in postfix_tasks), postfix_tasks
    assert re.search(r"^TASK \[sonla\.mail\.mailboxes : Converge every mailbox", apply.stdout, re.MULTILINE)
    # The welcome mail is the inventory's business, its job and cron the server's setup (issue 19), which the
    # dynamic include's tasks only show in a real run.
    assert re.search(r"^TASK \[sonla\.mail\.mailboxes : Welcome each new mailbox", apply.stdout, re.MULTILINE)
    for setup in ("mailboxes : Install the welcome job", "mailboxes : Create the group", "lifecycle : Install cron"):
        assert f"TASK [sonla.mail.{setup}" not in apply.stdout, setup
    assert sql(host, "SELECT state FROM mailbox WHERE address = ?", NEW_ADDRESS) == [{"state": "active"}]
    print(f"apply with --tags inventory: {elapsed:.1f} s")  # figures are the benchmark's (docs/benchmarks.md)


def _quota(inventory) -> int:
    policy = (inventory / "mail" / "policy.yml").read_text(encoding="utf-8")
    return int(re.search(r"default_quota_mb:\s*(\d+)", policy).group(1))
