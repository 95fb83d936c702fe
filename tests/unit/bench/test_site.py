# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole-site benchmark's accounting (bench/site.py, issue 19): each role's share, packages apart."""

from __future__ import annotations

import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "bench"))  # its neighbours: generate, mail, podman, run
_spec = importlib.util.spec_from_file_location("bench_site", os.path.join(ROOT, "bench", "site.py"))
bench_site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_site)


def test_roles_are_summed_by_name_with_package_installations_left_out():
    run = {"tasks": {"sonla.mail.postfix : Install Postfix": 40.0, "sonla.mail.postfix : Write main.cf": 1.5,
                     "sonla.mail.postfix : Start Postfix": 0.5, "sonla.mail.dovecot : Write dovecot.conf": 2.0,
                     "Load the mail inventory": 3.0, "Gathering Facts": 1.0},
           "actions": {"sonla.mail.postfix : Install Postfix": "ansible.builtin.apt",
                       "sonla.mail.postfix : Write main.cf": "ansible.builtin.template"}}
    assert bench_site.by_role(run) == {"postfix": 2.0, "dovecot": 2.0, "site.yml": 4.0}


def test_the_table_has_each_step_of_both_strategies_and_packages_apart():
    step = {"wall": 10.0, "tasks": {"sonla.mail.postfix : Install Postfix": 4.0, "sonla.mail.postfix : Write main.cf": 1.0},
            "actions": {"sonla.mail.postfix : Install Postfix": "sonla.mail.packages"}}
    figures = {name: dict(step) for name in bench_site.STEPS}
    figures["first"] = dict(step, packages=4.0, welcome_left=49800)
    figures["drift"] = dict(step, found=True)
    table = bench_site.table(1000, figures).splitlines()
    assert table[2] == "| step | whole playbook | postfix |"
    assert "| first converge (packages apart: 4 s); welcome mails left to the job: 49,800 | 6.0 s | 1.0 |" in table
    assert "| noop (mitogen) | 10.0 s | 1.0 |" in table and "| quota (linear) | 10.0 s | 1.0 |" in table
    assert "| drift check (--check; hand edit found: True) | 10.0 s | 1.0 |" in table


def test_a_no_op_counts_every_mail_servers_changes_not_the_controllers(tmp_path):
    log = tmp_path / "noop.log"
    log.write_text("PLAY RECAP *****\n"
                   "localhost                  : ok=1    changed=1    unreachable=0    failed=0\n"
                   "sonla-bench-front          : ok=120  changed=0    unreachable=0    failed=0\n"
                   "sonla-bench-store2         : ok=98   changed=2    unreachable=0    failed=0\n")
    assert bench_site.changed_tasks(str(log)) == 2


def test_the_several_hosts_layout_is_molecule_scaleouts_with_this_runs_addresses_and_folder():
    connections = {name: {"ansible_host": f"10.88.0.{number}"} for number, name in enumerate(bench_site.SEVERAL, 10)}
    children = bench_site.several_groups(connections, "/work/bench")
    assert set(children["mail_servers"]["hosts"]) == set(bench_site.SEVERAL)
    assert set(children["db"]["hosts"]) == set(children["mx"]["hosts"]) == {"sonla-scale-front"}
    assert set(children["mailstore"]["hosts"]) == {"sonla-scale-store1", "sonla-scale-store2"}
    assert set(children["webmail"]["hosts"]) == {"sonla-scale-front", "sonla-scale-store2"}
    store2 = children["mailstore"]["hosts"]["sonla-scale-store2"]
    assert store2["ansible_host"] == "10.88.0.12" and store2["webmail_mail_tls_ca_file"].endswith("front.crt")
    common = children["mail_servers"]["vars"]
    assert common["scaleout_webmail_addresses"] == ["10.88.0.10", "10.88.0.12"]  # not podman's
    assert common["mailboxes_handoff_dir"] == "/work/bench/handoff"


def test_the_several_hosts_table_says_so_and_names_no_welcome_mails():
    first = {"wall": 10.0, "packages": 4.0,
             "tasks": {"sonla.mail.postfix : Install Postfix": 4.0, "sonla.mail.postfix : Write main.cf": 1.0},
             "actions": {"sonla.mail.postfix : Install Postfix": "sonla.mail.packages"}}
    table = bench_site.table(50000, {"first": first}, ", several hosts").splitlines()
    assert table[0] == "## 50,000 people, site.yml over SSH, several hosts"
    assert table[4] == "| first converge (packages apart: 4 s) | 6.0 s | 1.0 |"
