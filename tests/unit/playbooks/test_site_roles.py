# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which roles site.yml runs on which host (issue 15, docs/architecture.md), once the play has worked out each host's
tiers as facts (issue 19: a play variable is templated again on every task of a role whose condition reads it).

One ansible-playbook run on the controller: the play's own variables and its first task as written, then each role's
condition from site.yml, untagged and with --tags inventory, for hosts placed in the inventory's groups as an operator
would. A host in no group does everything; the lifecycle runs on the first db host only; the backup needs its
passphrase; a tagged run takes only the roles an inventory change touches.
"""

from __future__ import annotations

import pytest
from _site_play import run_tasks, servers_play

FREEZE = "Work out once the tiers this host runs and the roles this run takes"
# host: (its groups besides mail_servers, its variables)
HOSTS = {
    "single": ([], {}),
    "db1": (["db"], {}),
    "db2": (["db"], {}),
    "mx": (["mx"], {}),
    "mx_unfiltered": (["mx"], {"sonla_mail_filter_enabled": False}),
    "proxy": (["proxy"], {}),
    "store": (["mailstore"], {"backup_password": "from a vault"}),
    "web": (["webmail"], {}),
    "front": (["mx", "proxy", "webmail"], {}),
}
UNTAGGED = {
    "single": {"mailboxes", "postfix", "dovecot", "filter", "webmail", "mta_sts", "lifecycle", "monitoring"},
    "db1": {"mailboxes", "lifecycle", "monitoring"},
    "db2": {"mailboxes", "monitoring"},
    "mx": {"postfix", "filter", "monitoring"},
    "mx_unfiltered": {"postfix", "monitoring"},
    "proxy": {"dovecot", "monitoring"},
    "store": {"dovecot", "backup", "monitoring"},
    "web": {"webmail", "mta_sts", "monitoring"},
    "front": {"postfix", "dovecot", "filter", "webmail", "mta_sts", "monitoring"},
}
# An inventory change: the user database's writer converges the mailboxes, the lifecycle's host its lists.
INVENTORY_TAGGED = {"single": {"mailboxes", "lifecycle"}, "db1": {"mailboxes", "lifecycle"}, "db2": {"mailboxes"}}


@pytest.fixture(scope="module")
def selected(tmp_path_factory) -> dict[tuple[str, ...], dict[str, set[str]]]:
    """The roles whose condition holds on each host, for each set of ansible-playbook options."""
    play = servers_play()
    freeze = play["pre_tasks"][0]
    assert freeze["name"] == FREEZE
    roles = [{"name": entry["role"].split(".")[-1], "ansible.builtin.debug": {"msg": "runs"},
              "when": entry.get("when", True), "tags": ["always"]} for entry in play["roles"]]
    variables = {name: play["vars"][name] for name in freeze["ansible.builtin.set_fact"]}
    folder = tmp_path_factory.mktemp("site")
    outcomes = {}
    for options in ((), ("--tags", "inventory")):
        tasks = run_tasks(folder, variables, [freeze, *roles], HOSTS, *options)[1:]
        outcomes[options] = {host: {task["task"]["name"] for task in tasks if not task["hosts"][host].get("skipped")}
                             for host in HOSTS}
    return outcomes


@pytest.mark.parametrize("host", HOSTS)
def test_an_untagged_run_takes_the_roles_of_the_hosts_tiers(selected, host):
    assert selected[()][host] == UNTAGGED[host]


@pytest.mark.parametrize("host", HOSTS)
def test_an_inventory_change_takes_only_the_mailboxes_and_the_lifecycle(selected, host):
    assert selected[("--tags", "inventory")][host] == INVENTORY_TAGGED.get(host, set())
