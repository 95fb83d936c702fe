"""The merge-request pipeline's pure parts: which changes converge only the inventory's roles, and the plan's
merge request comment (issue 19, docs/pipeline.md)."""

import importlib.machinery
import importlib.util
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_loader = importlib.machinery.SourceFileLoader("mr_pipeline", os.path.join(ROOT, "scripts", "mr-pipeline"))
_spec = importlib.util.spec_from_loader("mr_pipeline", _loader)
pipeline = importlib.util.module_from_spec(_spec)
_loader.exec_module(pipeline)


@pytest.mark.parametrize(("changed", "expected"), [
    (["mail/people/mocchau.yml"], True),
    (["mail/people/mocchau.yml", "mail/addresses.lock.yml", "mail/aliases.yml"], True),
    (["mail/people/mocchau.yml", "mail/policy.yml"], False),  # quotas and limits reach Postfix and Dovecot
    (["mail/organizations.yml"], False),  # the operators' mailbox reaches the filter and the health check
    (["hosts.yml"], False),
    ([], False),  # nothing changed: the whole site, which proves every role
])
def test_only_people_aliases_and_pins_converge_with_the_inventory_tag(changed, expected):
    assert pipeline.inventory_only(changed) is expected


def test_changed_files_are_read_from_git_relative_to_the_inventory(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "inventories" / "p" / "mail" / "people").mkdir(parents=True)
    person = tmp_path / "inventories" / "p" / "mail" / "people" / "a.yml"
    person.write_text("people: []\n")
    (tmp_path / "README").write_text("x\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    person.write_text("people: [x]\n")
    (tmp_path / "README").write_text("y\n")  # outside the inventory: not its change
    assert pipeline.changed_files(str(tmp_path / "inventories" / "p"), "HEAD") == ["mail/people/a.yml"]


def _record(*tasks, hosts=("mail1",)):
    return {"plays": [{"tasks": [{"task": {"name": name}, "hosts": results} for name, results in tasks]}],
            "stats": {host: {} for host in hosts}}


def test_the_plan_names_each_changing_task_with_its_diff_and_nothing_else():
    record = _record(
        ("sonla.mail.mailboxes : Converge the mailboxes", {"mail1": {
            "changed": True, "diff": {"before": "", "after": "lan.nguyen@sonla.gov.vn: Nguyễn Lan (skhcn, 1024 MB)\n"}}}),
        ("sonla.mail.postfix : Write main.cf", {"mail1": {
            "changed": True, "diff": [{"before": "a = 1\nhand = edit\n", "after": "a = 1\n",
                                       "before_header": "/etc/postfix/main.cf", "after_header": "template"}]}}),
        ("sonla.mail.dovecot : Write dovecot.conf", {"mail1": {"changed": False}}),
        ("sonla.mail.postfix : Write the maps", {"mail1": {"changed": True, "results": [  # a loop: its items' diffs
            {"changed": False, "diff": {"before": "same\n", "after": "same\n"}},
            {"changed": True, "diff": {"before": "old map\n", "after": "new map\n"}}]}}),
        hosts=("mail1", "mail2"))
    comment = pipeline.summarize(record)
    assert "## mail1: 3 task(s) would change" in comment and "## mail2: nothing to change" in comment
    assert "  +lan.nguyen@sonla.gov.vn: Nguyễn Lan (skhcn, 1024 MB)" in comment
    assert "  -hand = edit" in comment and "--- /etc/postfix/main.cf" in comment
    assert "dovecot.conf" not in comment
    assert "  -old map\n  +new map" in comment and "same" not in comment


def test_the_plan_lists_failures_and_cuts_long_diffs():
    long_after = "".join(f"line {n}\n" for n in range(pipeline.DIFF_LINES_PER_TASK + 50))
    record = _record(
        ("big : Render", {"mail1": {"changed": True, "diff": {"before": "", "after": long_after}}}),
        ("broken : Task", {"mail1": {"failed": True, "msg": "dovecot is not running"}}))
    comment = pipeline.summarize(record)
    assert "more lines in plan.json" in comment and f"+line {pipeline.DIFF_LINES_PER_TASK + 49}" not in comment
    assert "## Failed\n- `mail1`: broken : Task: dovecot is not running" in comment
