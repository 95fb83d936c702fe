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
