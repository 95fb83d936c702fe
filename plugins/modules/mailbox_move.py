#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mailbox_move
short_description: Read, switch and finish the moves of mailboxes to another mailstore
description:
  - Several hosts (issue 15, docs/architecture.md). A converge of M(sonla.mail.mailboxes) records a move when a
    person's entry names another C(store) than the one holding the mailbox. The entry point C(move) of the role C(mailboxes)
    then copies the mail with C(doveadm sync), calls this module to switch the mailbox's C(host) (the Dovecot proxy
    routes by it at the next login or delivery), runs a final sync, removes the mail from the old store, and calls
    this module to finish the move.
  - Without O(switch) or O(finish) it only reads the moves under way. Each step is recorded, so a run that stopped
    half-way goes on from where it was at the next converge.
version_added: 0.3.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.NO_DIFF
options:
  database:
    description: The user database, as given to M(sonla.mail.mailboxes) (a PostgreSQL URI on several hosts).
    type: str
    required: true
  switch:
    description: Moving mailboxes whose mail was copied to the target store; their C(host) becomes the target.
    type: list
    elements: str
    default: []
  finish:
    description:
      - Switched mailboxes whose final sync succeeded and whose mail was removed from the source; the move is forgotten.
      - A mailbox that was not switched yet is left as it is.
    type: list
    elements: str
    default: []
  now:
    description: The time of the steps, C(YYYY-MM-DD HH:MM:SS) UTC; defaults to the clock.
    type: str
"""

EXAMPLES = r"""
- name: Read the moves under way
  sonla.mail.mailbox_move:
    database: postgresql:///sonla_mail?user=sonla_mail_owner
  register: moves

- name: Route the copied mailboxes to their new store
  sonla.mail.mailbox_move:
    database: postgresql:///sonla_mail?user=sonla_mail_owner
    switch: "{{ moves.moves | rejectattr('switched') | map(attribute='address') }}"
"""

RETURN = r"""
moves:
  description: The moves under way after this run (in check mode, before it), by address.
  returned: always
  type: list
  elements: dict
  sample: [{address: binhtt.skhcn@sonla.gov.vn, source: store1, target: store2, switched: false}]
switched:
  description: The mailboxes switched to their target by this run (in check mode, those that would be).
  returned: always
  type: list
  elements: str
  sample: [binhtt.skhcn@sonla.gov.vn]
finished:
  description: The moves finished by this run (in check mode, those that would be).
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils import _userdb


def main():
    module = AnsibleModule(
        argument_spec={
            "database": {"type": "str", "required": True},
            "switch": {"type": "list", "elements": "str", "default": []},
            "finish": {"type": "list", "elements": "str", "default": []},
            "now": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    now = params["now"] or _userdb.utc_now()
    try:
        connection = _userdb.connect(params["database"], upgrade=False)
        moves = _userdb.read_moves(connection)
        if module.check_mode:
            switched = [address for address in params["switch"] if address in moves and not moves[address]["switched_at"]]
            finished = [address for address in params["finish"] if address in moves and moves[address]["switched_at"]]
        else:
            switched = _userdb.switch_moves(connection, params["switch"], now) if params["switch"] else []
            finished = _userdb.finish_moves(connection, params["finish"], now) if params["finish"] else []
            moves = _userdb.read_moves(connection)
    except _userdb.DatabaseError as error:
        module.fail_json(msg=f"{params['database']}: nothing was changed: {error}")
    module.exit_json(
        changed=bool(switched or finished), switched=switched, finished=finished,
        moves=[{"address": address, "source": move["source"], "target": move["target"],
                "switched": move["switched_at"] is not None} for address, move in moves.items()])


if __name__ == "__main__":
    main()
