#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migrate
short_description: Import mailboxes from the old mail system with Dovecot's own one-way sync
description:
  - For each mailbox whose inventory entry names C(migrate_from), imports the legacy IMAP account into the new
    mailbox with C(doveadm sync -1 -R) through Dovecot's imapc backend.
  - Idempotent and resumable; a second run fetches only what is new, and never deletes mail from the new mailbox.
  - The legacy passwords come from O(credentials) (an Ansible Vault file) and reach doveadm only in a temporary
    configuration file readable by root alone, deleted after each import; they are never in an argument or the output.
  - Each run is recorded in the user database's C(migration) table (runs, messages imported).
  - Check mode names the imports it would run and changes nothing; how much is new is known only by running them.
version_added: 0.3.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.NO_DIFF
options:
  database:
    description: Path of the SQLite user database on the mail server; the mailboxes must already be converged.
    type: path
    required: true
  migrations:
    description: The RV(sonla.mail.mail_inventory#module:migrations) of M(sonla.mail.mail_inventory).
    type: list
    elements: dict
    required: true
  credentials:
    description:
      - The legacy passwords, keyed like the entries (C(person:<id>), C(org:<id>)); kept in an Ansible Vault file.
      - Every migration needs one; the run fails before importing anything when one is missing.
    type: dict
    required: true
  dovecot_config:
    description: The server's Dovecot configuration, included by the temporary one.
    type: path
    default: /etc/dovecot/dovecot.conf
  doveadm:
    description: The doveadm program.
    type: path
    default: /usr/bin/doveadm
"""

EXAMPLES = r"""
- name: Import the old mailboxes
  sonla.mail.migrate:
    database: /var/lib/sonla-mail/users.sqlite
    migrations: "{{ sonla_mail_inventory.migrations }}"
    credentials: "{{ mailboxes_migration_credentials }}"  # from a vault file
"""

RETURN = r"""
imported:
  description: Per mailbox, how many messages this run imported (in check mode, the imports it would run, with 0).
  returned: always
  type: dict
  sample: {annv.skhcn@sonla.gov.vn: 312}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils import _migration, _userdb


def main():
    module = AnsibleModule(
        argument_spec={
            "database": {"type": "path", "required": True},
            "migrations": {"type": "list", "elements": "dict", "required": True},
            "credentials": {"type": "dict", "required": True, "no_log": True},
            "dovecot_config": {"type": "path", "default": "/etc/dovecot/dovecot.conf"},
            "doveadm": {"type": "path", "default": "/usr/bin/doveadm"},
        },
        supports_check_mode=True,
    )
    params = module.params
    migrations = params["migrations"]
    credentials = params["credentials"]
    missing = sorted(item["key"] for item in migrations if not credentials.get(item["key"]))
    if missing:
        module.fail_json(msg="no legacy password in the vault's mailboxes_migration_credentials for "
                             + ", ".join(missing) + "; nothing was imported (docs/migration.md)")
    if module.check_mode or not migrations:
        module.exit_json(changed=False, imported={item["address"]: 0 for item in migrations})
    secrets = [str(value) for value in credentials.values()]
    try:
        with open(params["dovecot_config"], encoding="utf-8") as stream:
            main_text = stream.read()
    except OSError as error:
        module.fail_json(msg=f"cannot read the Dovecot configuration: {error}")
    connection = _userdb.connect(params["database"])
    imported = {}
    for item in migrations:
        address = item["address"]
        before = _count(module, params["doveadm"], address, secrets)
        config = _migration.write_private_config(
            _migration.dovecot_config(params["dovecot_config"], main_text, item, str(credentials[item["key"]])))
        try:
            rc, out, err = module.run_command(_migration.sync_argv(params["doveadm"], config, address))
        finally:
            os.unlink(config)
        # dsync's 2 means "run again": a change on the old server during the run; the next converge continues.
        if rc not in (0, 2):
            module.fail_json(msg=f"import into {address} from {item['host']} failed (rc {rc}); the next run resumes: "
                                 + _migration.masked((err or out).strip(), secrets), imported=imported)
        imported[address] = _count(module, params["doveadm"], address, secrets) - before
        try:
            _record(connection, item, imported[address])
        except _userdb.DatabaseError as error:
            module.fail_json(msg=f"import into {address} done, not recorded: {error}", imported=imported)
    module.exit_json(changed=any(count > 0 for count in imported.values()), imported=imported)


def _count(module, doveadm: str, address: str, secrets) -> int:
    rc, out, err = module.run_command(_migration.count_argv(doveadm, address))
    if rc != 0:
        module.fail_json(msg=f"cannot count the messages of {address}: " + _migration.masked(err.strip(), secrets))
    return _migration.message_count(out)


def _record(connection, item: dict, count: int) -> None:
    now = _userdb.utc_now()
    source = f"{item['user']}@{item['host']}:{item['port']}"
    with _userdb.transaction(connection):
        connection.execute(
            "INSERT INTO migration (address, source, runs, imported_total, last_imported, first_at, last_at)"
            " VALUES (?, ?, 1, ?, ?, ?, ?) ON CONFLICT (address) DO UPDATE SET source = excluded.source,"
            " runs = runs + 1, imported_total = imported_total + excluded.last_imported,"
            " last_imported = excluded.last_imported, last_at = excluded.last_at",
            (item["address"], source, count, count, now, now))
        if count:  # under the request of the inventory entry that asked for the import (R11.2)
            request = _userdb.held_request(connection, item["address"])
            _userdb.record_events(connection, [(now, item["address"], "migrated", request, f"{count} messages from {source}")])


if __name__ == "__main__":
    main()
