#!/usr/bin/env python3
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the ``mailboxes`` module's main() once, outside Ansible, with the arguments in a JSON file.

    python bench/module_call.py ARGS.json

bench/run.py uses it to time the module call alone (interpreter start, argument validation, plan,
transaction) and its peak memory. Prints one JSON line to stderr: seconds inside main(), peak RSS
in KiB, and the module's summary.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import time
import types
from contextlib import redirect_stdout

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for name, path in (("ansible_collections", []), ("ansible_collections.sonla", []),
                   ("ansible_collections.sonla.mail", [ROOT])):
    package = sys.modules.get(name) or types.ModuleType(name)
    package.__path__ = path
    sys.modules[name] = package

from ansible.module_utils.testing import patch_module_args

from ansible_collections.sonla.mail.plugins.modules import mailboxes


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as stream:
        args = json.load(stream)
    output = io.StringIO()
    start = time.monotonic()
    code = 0
    with patch_module_args(args), redirect_stdout(output):
        try:
            mailboxes.main()
        except SystemExit as exit_:
            code = exit_.code or 0
    seconds = time.monotonic() - start
    result = json.loads(output.getvalue() or "{}")
    report = {"seconds": seconds, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              "summary": result.get("summary"), "failed": bool(result.get("failed")) or code != 0,
              "msg": result.get("msg")}
    print(json.dumps(report), file=sys.stderr)
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
