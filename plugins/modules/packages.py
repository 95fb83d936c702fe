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
  - Returns the installed upstream versions of O(name) and O(report), which the roles read instead of asking each
    program for its version in a task of their own (issue 19).
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
  default_release:
    description:
      - The release apt prefers while installing the missing packages (C(apt-get -t)), so that their newer
        dependencies come from it too, as in V(forky) for a Dovecot taken from Debian's next release
        (docs/architecture.md). Packages already installed are not upgraded.
      - Unset, apt's pinning alone decides.
    type: str
  report:
    description: Other packages whose installed versions to return in RV(versions), without installing them.
    type: list
    elements: str
    default: []
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
versions:
  description:
    - The upstream versions of the packages of O(name) and O(report) that are installed, by package name (the
      Debian epoch, revision and repackaging marks left out, as in V(2.4.1) for V(1:2.4.1+dfsg1-6)).
    - In check mode, a package the task would install is not in it.
  returned: always
  type: dict
  sample: {"dovecot-core": "2.4.1", "nginx": "1.26.3"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils._packages import DPKG_FORMAT, installed_versions


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str", required=True),
            update_cache=dict(type="bool", default=False),
            cache_valid_time=dict(type="int", default=0),
            install_recommends=dict(type="bool"),
            default_release=dict(type="str"),
            report=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    names, asked = module.params["name"], module.params["name"] + module.params["report"]
    if not asked:  # dpkg-query without names lists every package
        module.exit_json(changed=False, missing=[], versions={})
    # One line per package dpkg knows; an unknown package is reported on stderr (rc 1) and has no line.
    _, out, _ = module.run_command(["dpkg-query", "-W", f"-f={DPKG_FORMAT}", *asked])
    versions = installed_versions(out, asked)
    module.exit_json(changed=False, missing=[name for name in names if name.split(":")[0] not in versions],
                     versions=versions)


if __name__ == "__main__":
    main()
