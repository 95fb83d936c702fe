#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: selfsigned_certificate
short_description: Make a self-signed TLS certificate and its private key where there is none (tests, demo)
description:
  - Where O(certificate) or O(private_key) is missing, makes the folders, a new 2048-bit RSA key and a certificate
    for O(names) with C(openssl req). An existing pair is kept; only the key's owner (root), group (root) and mode
    (0600) are set when they differ.
  - Postfix, Dovecot, the webmail and MTA-STS use it for test and demo servers, in one task each instead of three
    (issue 19). Production servers are given their certificates (docs/tls.md).
version_added: 0.9.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.NO_DIFF
options:
  certificate:
    description: The certificate's absolute path (PEM). Its folder is made (root, 0755) when missing.
    type: path
    required: true
  private_key:
    description: The private key's absolute path (PEM, not encrypted). Its folder is made (root, 0755) when missing.
    type: path
    required: true
  names:
    description: The DNS names the certificate is for; the first one is its subject's common name.
    type: list
    elements: str
    required: true
  days:
    description: How long the certificate is valid, in days.
    type: int
    default: 825
"""

EXAMPLES = r"""
- name: Provide the TLS certificate
  sonla.mail.selfsigned_certificate:
    certificate: /etc/ssl/sonla/mail.crt
    private_key: /etc/ssl/sonla/mail.key
    names: [mail.sonla.gov.vn]
  when: postfix_tls_selfsigned
"""

RETURN = r"""
action:
  description: V(make) when the pair was made, V(protect) when the key's owner, group or mode was set, V(none) else.
  returned: always
  type: str
"""

import grp
import os
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils._selfsigned import (
    CERT_FOLDER_MODE,
    KEY_GROUP,
    KEY_MODE,
    KEY_OWNER,
    openssl_argv,
    plan,
)


def _key_attributes(path: str) -> tuple[str, str, int] | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    try:
        owner, group = pwd.getpwuid(status.st_uid).pw_name, grp.getgrgid(status.st_gid).gr_name
    except KeyError:  # an id without a name is not root's
        owner, group = str(status.st_uid), str(status.st_gid)
    return owner, group, status.st_mode & 0o7777


def _protect(path: str) -> None:
    os.chown(path, pwd.getpwnam(KEY_OWNER).pw_uid, grp.getgrnam(KEY_GROUP).gr_gid)
    os.chmod(path, KEY_MODE)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            certificate=dict(type="path", required=True),
            private_key=dict(type="path", required=True),
            names=dict(type="list", elements="str", required=True),
            days=dict(type="int", default=825),
        ),
        supports_check_mode=True,
    )
    certificate, private_key = module.params["certificate"], module.params["private_key"]
    try:
        argv = openssl_argv(module.params["names"], certificate, private_key, module.params["days"])
    except ValueError as error:
        module.fail_json(msg=str(error))
    action = plan(os.path.isfile(certificate), os.path.isfile(private_key), _key_attributes(private_key))
    if action is None or module.check_mode:
        module.exit_json(changed=action is not None, action=action or "none")
    if action == "make":
        for folder in {os.path.dirname(certificate), os.path.dirname(private_key)}:
            if not os.path.isdir(folder):
                os.makedirs(folder, mode=CERT_FOLDER_MODE)
        # A key readable by others would exist between openssl's write and the chmod without this umask.
        previous = os.umask(0o077)
        try:
            code, out, err = module.run_command(argv)
        finally:
            os.umask(previous)
        if code != 0:
            module.fail_json(msg=f"openssl could not make the certificate {certificate}", rc=code, stdout=out,
                             stderr=err)
    _protect(private_key)
    if action == "make":
        os.chmod(certificate, 0o644)  # the public half; the umask above made it 0600
    module.exit_json(changed=True, action=action)


if __name__ == "__main__":
    main()
