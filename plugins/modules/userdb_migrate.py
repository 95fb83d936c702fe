#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: userdb_migrate
short_description: Copy a SQLite user database into PostgreSQL with nothing lost
description:
  - The step from one host to several (issue 15, docs/architecture.md). Copies every row of the SQLite user
    database into an empty PostgreSQL one in one transaction, as it is, including password hashes, flags,
    timestamps, the events with their ids (so the revoked list and the handoff records stay) and the password history.
  - The PostgreSQL schema is created first, the same one M(sonla.mail.mailboxes) writes.
  - Refuses, before writing anything, when the PostgreSQL database already holds mailboxes, events or history, so
    a second run cannot mix two copies. A database already copied is reported unchanged.
  - Stop the mail services that write the SQLite file (Dovecot, the webmail, the lifecycle) while it runs.
version_added: 0.2.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
options:
  source:
    description: Path of the SQLite user database. It is brought to the current schema first.
    type: path
    required: true
  target:
    description:
      - PostgreSQL URI of the target database, such as C(postgresql:///sonla_mail). The database must exist.
      - A password, if one is needed, comes from a libpq pgpass file, never from the URI.
    type: str
    required: true
seealso:
  - module: sonla.mail.mailboxes
"""

EXAMPLES = r"""
- name: Move the user database of the single host into PostgreSQL
  sonla.mail.userdb_migrate:
    source: /var/lib/sonla-mail/users.sqlite
    target: postgresql:///sonla_mail
"""

RETURN = r"""
copied:
  description: Rows copied (or, in check mode, to copy), per table.
  returned: always
  type: dict
  sample: {mailbox: 50000, mailbox_event: 61234, meta: 1, password_history: 812}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils import _userdb


def already_copied(source, target) -> bool:
    """The target holds exactly the source's mailboxes, as a finished copy does."""
    return bool(_userdb.table_columns(target, "mailbox")) and _userdb.read_mailboxes(target) == _userdb.read_mailboxes(source)


def main():
    module = AnsibleModule(
        argument_spec={"source": {"type": "path", "required": True}, "target": {"type": "str", "required": True}},
        supports_check_mode=True,
    )
    source_path, target = module.params["source"], module.params["target"]
    if not _userdb.is_postgres(target):
        module.fail_json(msg=f"target: {target!r} is not a PostgreSQL URI (postgresql://...)")
    if not os.path.isfile(source_path):
        module.fail_json(msg=f"source: no SQLite user database at {source_path}")
    try:
        source = _userdb.connect(source_path, upgrade=not module.check_mode)
        postgres = _userdb.connect(target, upgrade=not module.check_mode)
        if already_copied(source, postgres):
            module.exit_json(changed=False, copied={})
        if module.check_mode:
            module.exit_json(changed=True, copied={table: source.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                                                   for table in _userdb.sqlite_tables(source)})
        copied = _userdb.copy_to_postgres(source, postgres)
    except (_userdb.MigrationError, *_userdb.DatabaseError) as error:
        module.fail_json(msg=f"nothing was copied: {error}")
    module.exit_json(changed=True, copied=copied)


if __name__ == "__main__":
    main()
