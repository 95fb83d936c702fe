#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: packages
short_description: Install Debian packages, asking dpkg first
description:
  - Makes sure Debian packages are installed. When dpkg already has every one of them, which is every run after the
    first, that answer is the whole task; C(ansible.builtin.apt) runs, with the same options, only when one is
    missing (issue 19). The apt module loads the package cache on every run, which makes it one of the slowest
    tasks of a converge that changes nothing.
  - A package that is installed is never upgraded or removed, as with O(ansible.builtin.apt#module:state=present).
version_added: 0.9.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.NO_DIFF
options:
  name:
    description: The packages.
    type: list
    elements: str
    required: true
  update_cache:
    description: Update the package lists before installing (when C(ansible.builtin.apt) runs).
    type: bool
    default: false
  cache_valid_time:
    description: With O(update_cache), the age in seconds below which the package lists are not updated.
    type: int
    default: 0
  install_recommends:
    description: Install the packages' recommended packages too. Unset, apt's own setting decides.
    type: bool
"""

EXAMPLES = r"""
- name: Install Postfix
  sonla.mail.packages:
    name: [postfix, postfix-sqlite]
    update_cache: true
    cache_valid_time: 3600
    install_recommends: false
"""

RETURN = r"""
missing:
  description: The packages dpkg did not have installed before the task.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str", required=True),
            update_cache=dict(type="bool", default=False),
            cache_valid_time=dict(type="int", default=0),
            install_recommends=dict(type="bool"),
        ),
        supports_check_mode=True,
    )
    names = module.params["name"]
    # One line per package dpkg knows; an unknown package is reported on stderr (rc 1) and has no line.
    _, out, _ = module.run_command(["dpkg-query", "-W", "-f=${Package}\t${db:Status-Status}\n", *names])
    installed = {line.split("\t")[0] for line in out.splitlines() if line.endswith("\tinstalled")}
    module.exit_json(changed=False, missing=[name for name in names if name.split(":")[0] not in installed])


if __name__ == "__main__":
    main()
