"""Every module's documentation parses (module docs live in the module, STYLE.md): ansible-doc reads each one."""

import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py")))


@pytest.mark.parametrize("module", MODULES)
def test_documentation_parses(module):
    environment = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                       ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"))
    shown = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "--json", f"sonla.mail.{module}"],
                           capture_output=True, text=True, env=environment, cwd=ROOT, check=False)
    assert shown.returncode == 0, shown.stderr
    doc = next(iter(json.loads(shown.stdout).values()))
    assert doc["doc"]["options"] and doc["return"] and doc["examples"].strip()
