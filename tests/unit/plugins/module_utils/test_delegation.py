"""Agency mailboxes by delegation (issue 17, docs/delegation.md): the inventory's ``delegates``, the plan that
converges the delegation table, and the table itself as Dovecot and Postfix query it."""

from ansible_collections.sonla.mail.plugins.module_utils import _userdb
from ansible_collections.sonla.mail.plugins.module_utils._inventory import load_inventory, resolve
from ansible_collections.sonla.mail.plugins.module_utils._mailbox_plan import (
    PlanError,
    build_plan,
    diff_text,
    validate_desired,
)
from tests.unit.conftest import ORGANIZATIONS

ORG = "skhcn@sonla.gov.vn"
AN = "annv.skhcn@sonla.gov.vn"
HAC = "haclv.skhcn@sonla.gov.vn"
NOW = "2026-12-01 08:00:00"


def with_delegates(folder, delegates: str):
    folder.write("organizations.yml", ORGANIZATIONS.replace(
        "    abbreviation: skhcn\n", f"    abbreviation: skhcn\n    delegates: {delegates}\n", 1))
    return load_inventory(str(folder))


def test_the_inventory_names_delegates_and_resolve_gives_their_addresses(inventory_folder):
    inventory = with_delegates(inventory_folder, "[skhcn-0002, skhcn-0001]")
    assert inventory.problems == []
    mailboxes = {mailbox["address"]: mailbox for mailbox in resolve(inventory).mailboxes}
    assert mailboxes[ORG]["delegates"] == [AN, HAC]
    assert "delegates" not in mailboxes["chiengmung@sonla.gov.vn"]  # no key without delegates


def test_an_unknown_or_removed_delegate_is_refused_with_file_and_line(inventory_folder):
    inventory = with_delegates(inventory_folder, "[skhcn-0001, skhcn-9999]")
    expected = (f"{inventory_folder}/organizations.yml:7: unknown-delegate: organization 'skhcn': "
                "delegate 'skhcn-9999' is not in the inventory")
    assert [str(problem) for problem in inventory.problems] == [expected]
    inventory_folder.write("people/skhcn.yml", inventory_folder.read("people/skhcn.yml").replace(
        'request: "1/QĐ-SKHCN"\n  - id: skhcn-0002', 'request: "1/QĐ-SKHCN"\n    state: absent\n  - id: skhcn-0002', 1))
    inventory = with_delegates(inventory_folder, "[skhcn-0001]")
    assert [problem.rule for problem in inventory.problems] == ["unknown-delegate"]
    assert "is removed (state: absent)" in str(inventory.problems[0])


def test_delegates_must_be_a_list_of_ids_without_repeats(inventory_folder):
    for value, what in (("skhcn-0001", "must be a list"), ("[skhcn-0001, skhcn-0001]", "names a person twice")):
        problems = [str(problem) for problem in with_delegates(inventory_folder, value).problems]
        assert what in problems[0] and "organizations.yml:7: schema: organization 'skhcn'" in problems[0]


def mailbox(address, kind="person", **extra):
    return {"address": address, "kind": kind, "owner_id": address.split("@")[0], "display_name": address,
            "organization": "skhcn", "quota_mb": 64, **extra}


def converge(connection, desired):
    desired = validate_desired(desired)
    plan = build_plan(desired, _userdb.read_mailboxes(connection), delegations=_userdb.read_delegations(connection))
    _userdb.apply_plan(connection, plan, {item["address"]: "{PLAIN}x" for item in plan.added}, NOW)
    return plan


def test_the_delegation_table_is_converged_as_a_whole(tmp_path):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    people = [mailbox(AN), mailbox(HAC)]
    plan = converge(connection, [mailbox(ORG, "organization", delegates=[AN, HAC]), *people])
    assert plan.delegated == [[ORG, AN], [ORG, HAC]] and plan.changed
    assert _userdb.read_delegations(connection) == {(ORG, AN), (ORG, HAC)}
    # Converged again: nothing to do.
    plan = converge(connection, [mailbox(ORG, "organization", delegates=[AN, HAC]), *people])
    assert not plan.changed and plan.summary()["delegated"] == 0
    # A pair the inventory no longer names is withdrawn, and the audit trail says so under the entry's request (R7.3, R11.2).
    plan = converge(connection, [mailbox(ORG, "organization", delegates=[AN], request="7/QĐ-SKHCN"), *people])
    assert plan.undelegated == [[ORG, HAC]] and plan.delegated == []
    assert diff_text(plan) == {"before": f"{ORG}: request_ref=None\n{ORG}: delegate {HAC}\n",
                               "after": f"{ORG}: request_ref=7/QĐ-SKHCN\n"}
    assert _userdb.read_delegations(connection) == {(ORG, AN)}
    events = connection.execute("SELECT address, action, request_ref, detail FROM mailbox_event"
                                " WHERE action LIKE '%delegated' ORDER BY id").fetchall()
    assert [tuple(row) for row in events] == [
        (ORG, "delegated", None, f"delegate={AN}"), (ORG, "delegated", None, f"delegate={HAC}"),
        (ORG, "undelegated", "7/QĐ-SKHCN", f"delegate={HAC}")]


def test_a_removed_or_revoked_delegate_takes_its_pairs_along(tmp_path):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [mailbox(ORG, "organization", delegates=[AN, HAC]), mailbox(AN), mailbox(HAC)])
    # The lifecycle revokes a mailbox by deleting its row (R7.2): the trigger drops its delegation.
    connection.execute("DELETE FROM mailbox WHERE address = ?", (HAC,))
    assert _userdb.read_delegations(connection) == {(ORG, AN)}
    # The inventory still names the revoked person: no pair for a mailbox that does not exist.
    plan = build_plan(validate_desired([mailbox(ORG, "organization", delegates=[AN, HAC]), mailbox(AN)]),
                      _userdb.read_mailboxes(connection), revoked={HAC: NOW},
                      delegations=_userdb.read_delegations(connection))
    assert plan.delegated == [] and plan.undelegated == []
    # A mailbox removed by the inventory goes with its pairs, in the same transaction.
    plan = converge(connection, [mailbox(ORG, "organization", delegates=[AN]), mailbox(AN, state="absent")])
    assert plan.removed == [AN] and plan.undelegated == []
    assert _userdb.read_delegations(connection) == set()


def test_only_an_organization_has_delegates():
    try:
        validate_desired([mailbox(AN, delegates=[HAC])])
    except PlanError as error:
        assert "only an organization's mailbox" in str(error)
    else:
        raise AssertionError("a person's mailbox with delegates was accepted")


def test_dovecot_and_postfix_see_only_active_delegates(tmp_path):
    """The queries the roles give Dovecot (acl_groups) and Postfix (sender login), on a real database."""
    import yaml

    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [mailbox(ORG, "organization", delegates=[AN]), mailbox(AN), mailbox(HAC)])
    with open("roles/postfix/vars/main.yml", encoding="utf-8") as stream:
        maps = {item["dest"].rsplit("}}-", 1)[1].removesuffix(".cf"): item["vars"]["__postfix_userdb_query"]
                for item in yaml.safe_load(stream)["__postfix_userdb_maps"]}
    groups_sql = yaml.safe_load(open("roles/dovecot/vars/main.yml", encoding="utf-8"))["__dovecot_acl_groups_sql"]
    groups_sql = groups_sql.replace("{{ __dovecot_delegates_group_prefix | sonla.mail.sql_string }}", "'g-'")

    def senders(address):
        return sorted(row[0] for row in connection.execute(maps["sender-login"].replace("%s", address)))

    def groups(address):
        return connection.execute(f"SELECT {groups_sql} FROM mailbox WHERE address = ?", (address,)).fetchone()[0]

    assert senders(ORG) == sorted([ORG, AN]) and senders(AN) == [AN] and senders(HAC) == [HAC]
    assert groups(AN) == f"g-{ORG}" and groups(HAC) is None
    connection.execute("UPDATE mailbox SET state = 'suspended' WHERE address = ?", (AN,))  # R8.1, at once
    assert senders(ORG) == [ORG] and groups(AN) is None
    connection.execute("UPDATE mailbox SET state = 'active' WHERE address = ?", (AN,))
    connection.execute("UPDATE mailbox SET state = 'suspended' WHERE address = ?", (ORG,))
    assert senders(ORG) == [ORG] and groups(AN) is None
