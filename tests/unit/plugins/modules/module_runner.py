"""Run a module's main() in-process, as community.general's unit tests do, and capture its result."""

from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class _Exit(Exception):
    pass


class _Fail(Exception):
    pass


def run(module, args):
    """Run ``module.main()`` with ``args``; return (exited normally, result)."""
    def exit_json(self, **result):
        raise _Exit(result)

    def fail_json(self, **result):
        raise _Fail(result)

    with patch_module_args(args), mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json):
        try:
            module.main()
        except _Exit as done:
            return True, done.args[0]
        except _Fail as failed:
            return False, failed.args[0]
    raise AssertionError("the module neither exited nor failed")
