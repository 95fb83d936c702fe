"""Issue 15: the planner gives each new mailbox a mailstore, balanced by quota, never reshuffles one, and records a
move only when the inventory names another store."""

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _userdb
from ansible_collections.sonla.mail.plugins.module_utils._mailbox_plan import PlanError, build_plan, validate_desired

STORES = ("store1", "store2")


def desired(*entries):
    return validate_desired([
        {"address": f"{name}@sonla.gov.vn", "kind": "person", "owner_id": name, "display_name": "Lò Văn Hặc",
         "organization": "skhcn", "quota_mb": quota, **fields} for name, quota, fields in entries])


def rows(**hosts):
    return {f"{name}@sonla.gov.vn": {"address": f"{name}@sonla.gov.vn", "host": host, "quota_mb": quota}
            for name, (host, quota) in hosts.items()}


def converge(connection, entries, stores=STORES):
    plan = build_plan(desired(*entries), _userdb.read_mailboxes(connection), stores=stores,
                      moves=_userdb.read_moves(connection), delegations=_userdb.read_delegations(connection),
                      erasing=_userdb.read_pending_erasures(connection))
    _userdb.apply_plan(connection, plan, {m["address"]: "{SSHA512}x" for m in plan.added}, "2027-01-05 08:00:00")
    return plan


def test_new_mailboxes_go_to_the_store_with_the_least_quota():
    plan = build_plan(desired(("a", 4096, {}), ("b", 1024, {}), ("c", 1024, {}), ("d", 1024, {})), {}, stores=STORES)
    # a -> store1 (tie, first); b, c, d -> store2 until it holds as much as store1 (3072 < 4096), then d on store2 too.
    assert plan.placement == {"a@sonla.gov.vn": "store1", "b@sonla.gov.vn": "store2", "c@sonla.gov.vn": "store2",
                              "d@sonla.gov.vn": "store2"}


def test_existing_quota_counts_and_a_named_store_is_honoured():
    current = rows(x=("store1", 10_000))
    current["x@sonla.gov.vn"].update(kind="person", owner_id="x")
    plan = build_plan(desired(("a", 2048, {}), ("b", 2048, {"store": "store1"}), ("c", 2048, {})), current, stores=STORES)
    assert plan.placement == {"a@sonla.gov.vn": "store2", "b@sonla.gov.vn": "store1", "c@sonla.gov.vn": "store2"}
    plan = build_plan(desired(("a", 2048, {}), ("b", 2048, {})), {}, stores=("store2", "store1"))
    assert plan.placement == {"a@sonla.gov.vn": "store2", "b@sonla.gov.vn": "store1"}


def test_no_store_on_a_single_host():
    plan = build_plan(desired(("a", 2048, {})), {})
    assert plan.placement == {}


def test_the_placement_is_stored_and_pinned(tmp_path):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [("a", 4096, {}), ("b", 1024, {})])
    hosts = {address: row["host"] for address, row in _userdb.read_mailboxes(connection).items()}
    assert hosts == {"a@sonla.gov.vn": "store1", "b@sonla.gov.vn": "store2"}
    # A third store, quota changes, new people: nobody already placed moves.
    plan = converge(connection, [("a", 512, {}), ("b", 8192, {}), ("c", 1024, {})], stores=("store1", "store2", "store3"))
    assert plan.placement == {"c@sonla.gov.vn": "store3"}
    assert [update["changes"] for update in plan.updated] == [{"quota_mb": [4096, 512]}, {"quota_mb": [1024, 8192]}]
    hosts = {address: row["host"] for address, row in _userdb.read_mailboxes(connection).items()}
    assert hosts == {"a@sonla.gov.vn": "store1", "b@sonla.gov.vn": "store2", "c@sonla.gov.vn": "store3"}
    assert not converge(connection, [("a", 512, {}), ("b", 8192, {}), ("c", 1024, {})],
                        stores=("store1", "store2", "store3")).changed


def test_another_store_records_a_move_and_the_host_stays_until_the_mail_is_copied(tmp_path):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [("a", 1024, {}), ("b", 1024, {})])
    plan = converge(connection, [("a", 1024, {"store": "store2", "request": "12/QĐ"}), ("b", 1024, {})])
    assert plan.changed and plan.summary()["moved"] == 1 and plan.unchanged == ["b@sonla.gov.vn"]
    assert plan.moved == [{"address": "a@sonla.gov.vn", "source": "store1", "target": "store2"}]
    assert _userdb.read_mailbox(connection, "a@sonla.gov.vn")["host"] == "store1"  # the proxy still routes to the mail
    assert _userdb.read_moves(connection) == {"a@sonla.gov.vn": {
        "address": "a@sonla.gov.vn", "source": "store1", "target": "store2", "switched_at": None}}
    events = connection.execute("SELECT action, request_ref, detail FROM mailbox_event WHERE action LIKE 'move%'")
    # The operators' decision: not recorded under the request that made the mailbox (R11.2).
    assert [tuple(row) for row in events] == [("move_planned", None, "host: store1 -> store2")]
    # The same inventory again records nothing more: the move is under way.
    assert not converge(connection, [("a", 1024, {"store": "store2", "request": "12/QĐ"}), ("b", 1024, {})]).changed


def test_a_move_switches_then_finishes_and_a_converge_then_changes_nothing(tmp_path):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [("a", 1024, {}), ("b", 1024, {})])
    converge(connection, [("a", 1024, {"store": "store2"}), ("b", 1024, {})])
    assert _userdb.finish_moves(connection, ["a@sonla.gov.vn"], "2027-01-06 08:00:00") == []  # not switched: kept
    assert _userdb.switch_moves(connection, ["a@sonla.gov.vn"], "2027-01-06 08:00:00") == ["a@sonla.gov.vn"]
    assert _userdb.switch_moves(connection, ["a@sonla.gov.vn"], "2027-01-06 08:01:00") == []  # once
    assert _userdb.read_mailbox(connection, "a@sonla.gov.vn")["host"] == "store2"
    assert _userdb.read_moves(connection)["a@sonla.gov.vn"]["switched_at"] == "2027-01-06 08:00:00"
    assert not converge(connection, [("a", 1024, {"store": "store2"}), ("b", 1024, {})]).changed
    assert _userdb.finish_moves(connection, ["a@sonla.gov.vn"], "2027-01-06 08:02:00") == ["a@sonla.gov.vn"]
    assert _userdb.read_moves(connection) == {}
    assert not converge(connection, [("a", 1024, {"store": "store2"}), ("b", 1024, {})]).changed
    actions = [row[0] for row in connection.execute("SELECT action FROM mailbox_event WHERE action LIKE 'move%' ORDER BY id")]
    assert actions == ["move_planned", "move_switched", "move_finished"]


@pytest.mark.parametrize("store", ["store3", "store1"])
def test_another_store_while_a_move_is_under_way_is_refused(tmp_path, store):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [("a", 1024, {})], stores=("store1", "store2", "store3"))
    converge(connection, [("a", 1024, {"store": "store2"})], stores=("store1", "store2", "store3"))
    plan = converge(connection, [("a", 1024, {"store": store})], stores=("store1", "store2", "store3"))
    assert not plan.changed and "moving from store1 to store2 is under way" in plan.refused[0]["reason"]
    assert _userdb.read_moves(connection)["a@sonla.gov.vn"]["target"] == "store2"


def test_a_moving_mailbox_counts_on_its_new_store(tmp_path):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [("a", 4096, {}), ("b", 1024, {})])  # a on store1, b on store2
    plan = converge(connection, [("a", 4096, {"store": "store2"}), ("b", 1024, {}), ("c", 1024, {})])
    assert plan.placement == {"c@sonla.gov.vn": "store1"}  # store2 will hold 5120 MB, store1 none


def test_a_removed_mailbox_forgets_its_move(tmp_path):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [("a", 1024, {})])
    converge(connection, [("a", 1024, {"store": "store2"})])
    converge(connection, [("a", 1024, {"state": "absent"})])
    assert _userdb.read_moves(connection) == {}


def test_mailboxes_of_the_single_host_are_pinned_to_the_first_store(tmp_path):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [("a", 1024, {}), ("b", 1024, {"state": "suspended", "reason": "Nghỉ việc"})], stores=())
    plan = converge(connection, [("a", 1024, {}), ("b", 1024, {"state": "suspended", "reason": "Nghỉ việc"})],
                    stores=("old", "store2"))
    assert sorted(update["address"] for update in plan.updated) == ["a@sonla.gov.vn", "b@sonla.gov.vn"]
    assert plan.unchanged == []
    assert {row["host"] for row in _userdb.read_mailboxes(connection).values()} == {"old"}
    events = connection.execute("SELECT detail FROM mailbox_event WHERE action = 'updated'").fetchall()
    assert [row[0] for row in events] == ["host: None -> old"] * 2


MOVING_TO_STORE9 = {"a@sonla.gov.vn": {"source": "store1", "target": "store9", "switched_at": None}}


@pytest.mark.parametrize(("current", "entries", "moves", "message"), [
    (rows(a=("store9", 1024)), [("a", 1024, {})], {},
     "mailbox a@sonla.gov.vn is on mailstore 'store9', which is not among"),
    (rows(a=("store1", 1024)), [("a", 1024, {})], MOVING_TO_STORE9,
     "mailbox a@sonla.gov.vn is moving to mailstore 'store9', which is not among"),
    ({}, [("a", 1024, {"store": "store9"})], {}, "mailbox a@sonla.gov.vn: store 'store9' is not among the mailstores"),
])
def test_an_unknown_store_fails_before_anything_is_written(current, entries, moves, message):
    for row in current.values():
        row.update(kind="person", owner_id="a", display_name="Lò Văn Hặc", organization="skhcn", request_ref=None,
                   state="active", suspended_by=None, suspended_reason=None, suspended_at=None)
    with pytest.raises(PlanError, match=message):
        build_plan(desired(*entries), current, stores=STORES, moves=moves)


def organization(name, quota, delegates, **fields):
    """An organization's entry with its delegates (issue 17), in desired()'s form."""
    return (name, quota, {"kind": "organization", "delegates": [f"{d}@sonla.gov.vn" for d in delegates], **fields})


def test_delegates_are_placed_with_their_organizations_mailbox(tmp_path):
    """Issue 15 with issue 17: Dovecot's shared namespace reads the organization's mail on the delegate's own store,
    so a new delegate goes where the organization's mailbox is, and a new organization where most of its delegates
    are; balance by quota comes after, and an entry's store: still wins."""
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [organization("org", 1024, [], store="store2"), ("big", 50_000, {"store": "store2"}),
                          ("d1", 1024, {"store": "store1"}), ("d2", 1024, {"store": "store1"}),
                          ("d3", 1024, {"store": "store2"})])
    plan = converge(connection, [
        organization("org", 1024, ["d1", "n1", "n2"]), ("big", 50_000, {}), ("d1", 1024, {}), ("d2", 1024, {}),
        ("d3", 1024, {}), ("n1", 1024, {}), ("n2", 1024, {"store": "store1"}),
        organization("neworg", 1024, ["d2", "d3", "d1"]), organization("alone", 1024, ["n3"]), ("n3", 1024, {}),
        ("free", 1024, {})])
    assert plan.placement == {
        "n1@sonla.gov.vn": "store2",  # with org, although store2 holds far more quota
        "n2@sonla.gov.vn": "store1",  # its entry names the store
        "neworg@sonla.gov.vn": "store1",  # two of its three delegates are there
        "alone@sonla.gov.vn": "store1",  # no partner placed yet: by quota; its new delegate follows it
        "n3@sonla.gov.vn": "store1",
        "free@sonla.gov.vn": "store1",  # by quota
    }
    assert plan.moved == []  # d1 stays on store1: existing mailboxes are never reshuffled


def test_the_placement_with_delegates_is_pinned_like_any_other(tmp_path):
    """Placed together once, never reshuffled: a later delegate of the organization follows it."""
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [("big", 50_000, {}), organization("org", 1024, ["a"]), ("a", 1024, {})])
    first = {address: row["host"] for address, row in _userdb.read_mailboxes(connection).items()}
    # The organization first (a tie: store1), its delegate with it, then the rest by quota.
    assert first == {"org@sonla.gov.vn": "store1", "a@sonla.gov.vn": "store1", "big@sonla.gov.vn": "store2"}
    plan = converge(connection, [("big", 50_000, {}), organization("org", 1024, ["a", "b"]), ("a", 1024, {}),
                                 ("b", 1024, {}), ("c", 1024, {})])
    assert plan.placement == {"b@sonla.gov.vn": "store1", "c@sonla.gov.vn": "store1"} and plan.moved == []


def test_a_removed_address_comes_back_only_once_its_store_has_erased_the_old_mail(tmp_path):
    """R7.2 on several hosts: the db host deletes the row while the mail is on a store, which may be down. Creating the
    address again before that store has erased it would hand the old mail to the new mailbox: it is refused, naming
    the store, and created at the first converge after the erasure."""
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [("a", 1024, {}), ("b", 1024, {})])
    host = _userdb.read_mailboxes(connection)["a@sonla.gov.vn"]["host"]
    converge(connection, [("a", 1024, {"state": "absent"}), ("b", 1024, {})])
    assert _userdb.read_pending_erasures(connection) == {"a@sonla.gov.vn": [host]}

    plan = converge(connection, [("a", 1024, {}), ("b", 1024, {})])
    assert plan.added == [] and [refusal["address"] for refusal in plan.refused] == ["a@sonla.gov.vn"]
    assert f"mail on {host} is not erased yet" in plan.refused[0]["reason"]
    assert "a@sonla.gov.vn" not in _userdb.read_mailboxes(connection)

    assert _userdb.erase_deleted_mail(connection, str(tmp_path / "vmail"), False, host) == []  # no folder: still cleared
    plan = converge(connection, [("a", 1024, {}), ("b", 1024, {})])
    assert [mailbox["address"] for mailbox in plan.added] == ["a@sonla.gov.vn"] and not plan.refused


def test_a_delegation_that_spans_two_stores_is_listed_apart(tmp_path):
    """A delegate given later to an organization on another store is not moved unasked: the plan lists the pair, and
    naming the organization's store in the delegate's entry moves it there and ends the listing."""
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(connection, [organization("org", 1024, [], store="store1"), ("a", 1024, {"store": "store2"}),
                          ("b", 1024, {"store": "store1"})])
    plan = converge(connection, [organization("org", 1024, ["a", "b", "n"]), ("a", 1024, {}), ("b", 1024, {}),
                                 ("n", 1024, {})])
    assert plan.placement == {"n@sonla.gov.vn": "store1"}  # a new delegate goes with the organization
    assert plan.apart == [{"organization": "org@sonla.gov.vn", "delegate": "a@sonla.gov.vn",
                           "organization_store": "store1", "delegate_store": "store2"}]
    plan = converge(connection, [organization("org", 1024, ["a", "b", "n"]), ("a", 1024, {"store": "store1"}),
                                 ("b", 1024, {}), ("n", 1024, {})])
    assert plan.moved == [{"address": "a@sonla.gov.vn", "source": "store2", "target": "store1"}]
    assert plan.apart == []


def test_no_delegation_is_apart_on_a_single_host():
    plan = build_plan(desired(organization("org", 1024, ["a"]), ("a", 1024, {})), {})
    assert plan.apart == []
