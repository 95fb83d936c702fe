#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: services
short_description: Keep a role's daemons running and started at boot, in one task
description:
  - Starts the services of O(started) that do not run and enables them at boot, and stops and disables those of
    O(stopped), in one module run on the server. A role uses it instead of one C(ansible.builtin.service) task per
    daemon, which costs a module run each even when everything already runs (issue 19).
  - Services are handled in the order given, each one started before the next, so a role names a daemon after the
    ones it needs.
  - With systemd (C(/run/systemd/system) exists) it uses C(systemctl); otherwise Debian's init scripts, through
    C(service) (running when C(service NAME status) succeeds) and C(update-rc.d) (enabled when a start link
    C(/etc/rc?.d/S??NAME) exists), as C(ansible.builtin.service) does there.
  - Restarts and reloads stay with the roles' handlers.
version_added: 0.9.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.NO_DIFF
options:
  started:
    description: Services to keep running and enabled at boot, in the order to start them.
    type: list
    elements: str
    default: []
  stopped:
    description: Services to keep stopped and disabled at boot.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Start rspamd after Valkey, which it stores its statistics in
  sonla.mail.services:
    started: [valkey-server, rspamd]

- name: Start clamd, and freshclam only with a signature mirror
  sonla.mail.services:
    started: "{{ ['clamav-daemon'] + (['clamav-freshclam'] if filter_freshclam_mirror else []) }}"
    stopped: "{{ [] if filter_freshclam_mirror else ['clamav-freshclam'] }}"
"""

RETURN = r"""
started:
  description: The services that were started (or would be, in check mode).
  returned: always
  type: list
  elements: str
enabled:
  description: The services that were enabled at boot (or would be).
  returned: always
  type: list
  elements: str
stopped:
  description: The services that were stopped (or would be).
  returned: always
  type: list
  elements: str
disabled:
  description: The services that were disabled at boot (or would be).
  returned: always
  type: list
  elements: str
unchanged:
  description: The services that were already as asked.
  returned: always
  type: list
  elements: str
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils._services import (
    DISABLE,
    ENABLE,
    START,
    STOP,
    State,
    plan,
    wanted,
)

RESULT_KEYS = {START: "started", ENABLE: "enabled", STOP: "stopped", DISABLE: "disabled"}


class Systemd:
    def __init__(self, module: AnsibleModule):
        self.module = module

    def state(self, name: str) -> State:
        running, _, _ = self.module.run_command(["systemctl", "is-active", "--quiet", name])
        enabled, _, _ = self.module.run_command(["systemctl", "is-enabled", "--quiet", name])
        return State(running=running == 0, enabled=enabled == 0)

    def commands(self, action: str, name: str) -> list[list[str]]:
        return [["systemctl", action, name]]


class InitScripts:
    """Debian's init scripts, where systemd does not run (containers)."""

    def __init__(self, module: AnsibleModule):
        self.module = module

    def state(self, name: str) -> State:
        if not os.path.exists(f"/etc/init.d/{name}"):
            if self.module.check_mode:  # the plan of a new server, whose packages are not installed yet
                return State(running=False, enabled=False)
            self.module.fail_json(msg=f"{name}: no such service (no /etc/init.d/{name})")
        running, _, _ = self.module.run_command(["service", name, "status"])
        return State(running=running == 0, enabled=bool(glob.glob(f"/etc/rc?.d/S??{name}")))

    def commands(self, action: str, name: str) -> list[list[str]]:
        if action in (START, STOP):
            return [["service", name, action]]
        # Without any link yet (a package that did not add them), update-rc.d makes its defaults first.
        defaults = [["update-rc.d", name, "defaults"]] if action == ENABLE and not glob.glob(f"/etc/rc?.d/K??{name}") else []
        return [*defaults, ["update-rc.d", name, action]]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            started=dict(type="list", elements="str", default=[]),
            stopped=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    try:
        want = wanted(module.params["started"], module.params["stopped"])
    except ValueError as error:
        module.fail_json(msg=str(error))
    manager = (Systemd if os.path.isdir("/run/systemd/system") else InitScripts)(module)
    services = plan(want, {name: manager.state(name) for name in want})
    result = {key: services.names(action) for action, key in RESULT_KEYS.items()}
    result.update(unchanged=services.unchanged, changed=bool(services.steps))
    if not module.check_mode:
        for action, name in services.steps:
            for command in manager.commands(action, name):
                code, out, err = module.run_command(command)
                if code != 0:
                    module.fail_json(msg=f"{name}: {' '.join(command)} failed: {(err or out).strip()}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
