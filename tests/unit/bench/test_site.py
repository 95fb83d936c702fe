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
