# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A role's templates rendered as a play renders them: Ansible's templating, with the role's defaults and vars and
the test's own variables on top."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")

# Rendered in a child process: there the collection loader is set up as ansible-playbook does, so the templates'
# sonla.mail filters resolve (the tests import the collection as a plain package).
_RENDER = """
import json, os, sys
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template
role, collections, jobs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
init_plugin_loader([collections])
def trust(value):
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: trust(item) for key, item in value.items()}
    if isinstance(value, list):
        return [trust(item) for item in value]
    return value
loader = DataLoader()
base = {"ansible_managed": "managed"}
for part in ("defaults", "vars"):
    base.update(trust(loader.load_from_file(os.path.join(role, part, "main.yml"))))
out = []
for template, variables in jobs:
    with open(os.path.join(role, "templates", template), encoding="utf-8") as stream:
        text = stream.read()
    out.append(Templar(loader=loader, variables=dict(base, **trust(variables))).template(trust_as_template(text)))
print(json.dumps(out))
"""


def render(role: str, jobs: list[tuple[str, dict]]) -> list[str]:
    """Each job's (template of ``role``, variables) rendered, all in one child process."""
    result = subprocess.run(
        [sys.executable, "-c", _RENDER, os.path.join(ROOT, "roles", role), COLLECTIONS, json.dumps(jobs)],
        capture_output=True, text=True, check=True, timeout=120,
    )
    return json.loads(result.stdout)
