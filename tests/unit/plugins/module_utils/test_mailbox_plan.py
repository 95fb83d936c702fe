"""The converge planner and its writer: add, change, suspend, restore, remove, caps (R7.2, R8.1, R8.3c)."""

import os

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _userdb
from ansible_collections.sonla.mail.plugins.module_utils._mailbox_plan import PlanError, build_plan, diff_text

NOW = "2026-11-28 10:00:00"
LATER = "2026-12-01 08:00:00"


def mailbox(local_part, **fields):
    desired = {
        "address": f"{local_part}@sonla.gov.vn", "kind": "person", "owner_id": local_part,
        "display_name": f"Người {local_part}", "organization": "skhcn", "quota_mb": 2048,
        "state": "active", "reason": None, "request": "1/QĐ", "leave_until": None,
    }
    desired.update(fields)
    return desired


@pytest.fixture
def database(tmp_path):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    yield connection
    connection.close()


def converge(connection, desired, now=NOW, **options):
    plan = build_plan(desired, _userdb.read_mailboxes(connection), **options)
    _userdb.apply_plan(connection, plan, {m["address"]: "{SSHA512}x" for m in plan.added}, now)
    return plan


def test_new_mailboxes_are_added_with_must_change(database):
    plan = converge(database, [mailbox("annv.skhcn"), mailbox("tohieu", kind="organization")])
    assert [m["address"] for m in plan.added] == ["annv.skhcn@sonla.gov.vn", "tohieu@sonla.gov.vn"]
    row = _userdb.read_mailboxes(database)["annv.skhcn@sonla.gov.vn"]
    assert row["must_change"] == 1  # R6.1a
    assert row["created_at"] == row["password_changed_at"] == NOW
    assert (row["local_part"], row["domain"], row["state"]) == ("annv.skhcn", "sonla.gov.vn", "active")


def test_second_run_changes_nothing(database):
    desired = [mailbox("annv.skhcn"), mailbox("haclv.skhcn", state="suspended", reason="Nghỉ phép")]
    converge(database, desired)
    again = build_plan(desired, _userdb.read_mailboxes(database))
    assert not again.changed
    assert sorted(again.unchanged) == ["annv.skhcn@sonla.gov.vn", "haclv.skhcn@sonla.gov.vn"]


def test_changed_fields_are_updated_and_listed(database):
    converge(database, [mailbox("annv.skhcn")])
    plan = converge(database, [mailbox("annv.skhcn", quota_mb=4096, request="2/QĐ")], now=LATER)
    assert plan.updated == [{"address": "annv.skhcn@sonla.gov.vn",
                             "changes": {"quota_mb": [2048, 4096], "request_ref": ["1/QĐ", "2/QĐ"]}, "request": "2/QĐ"}]
    row = _userdb.read_mailboxes(database)["annv.skhcn@sonla.gov.vn"]
    assert (row["quota_mb"], row["updated_at"], row["created_at"]) == (4096, LATER, NOW)


def test_suspension_keeps_the_mailbox_with_reason_and_date(database):
    converge(database, [mailbox("annv.skhcn")])
    plan = converge(database, [mailbox("annv.skhcn", state="suspended", reason="Lộ mật khẩu")], now=LATER)
    assert plan.suspended == [{"address": "annv.skhcn@sonla.gov.vn", "reason": "Lộ mật khẩu", "request": "1/QĐ"}]
    assert plan.removed == []
    row = _userdb.read_mailboxes(database)["annv.skhcn@sonla.gov.vn"]
    assert (row["state"], row["suspended_at"], row["suspended_reason"], row["suspended_by"]) == (
        "suspended", LATER, "Lộ mật khẩu", "inventory")


def test_lifting_an_inventory_suspension_forces_a_password_change(database):
    converge(database, [mailbox("annv.skhcn", state="suspended", reason="Nghỉ phép")])
    database.execute("UPDATE mailbox SET must_change = 0")
    plan = converge(database, [mailbox("annv.skhcn")], now=LATER)
    assert plan.restored == [{"address": "annv.skhcn@sonla.gov.vn", "request": "1/QĐ"}]
    row = _userdb.read_mailboxes(database)["annv.skhcn@sonla.gov.vn"]
    assert (row["state"], row["must_change"], row["suspended_at"]) == ("active", 1, None)  # R8.3c


def test_a_lifecycle_suspension_is_not_lifted_by_a_converge(database):
    converge(database, [mailbox("annv.skhcn")])
    database.execute("UPDATE mailbox SET state = 'suspended', suspended_by = 'lifecycle', suspended_reason = 'idle'")
    plan = build_plan([mailbox("annv.skhcn")], _userdb.read_mailboxes(database))
    assert not plan.changed
    assert plan.held == [{"address": "annv.skhcn@sonla.gov.vn", "suspended_by": "lifecycle", "reason": "idle"}]


def test_only_state_absent_removes(database):
    converge(database, [mailbox("annv.skhcn"), mailbox("haclv.skhcn")])
    missing = build_plan([mailbox("annv.skhcn")], _userdb.read_mailboxes(database))
    assert missing.removed == [] and missing.unmanaged == ["haclv.skhcn@sonla.gov.vn"]
    plan = converge(database, [mailbox("annv.skhcn"), mailbox("haclv.skhcn", state="absent")])
    assert plan.removed == ["haclv.skhcn@sonla.gov.vn"]
    assert list(_userdb.read_mailboxes(database)) == ["annv.skhcn@sonla.gov.vn"]
    actions = [row["action"] for row in database.execute("SELECT action FROM mailbox_event ORDER BY id")]
    assert actions == ["added", "added", "removed"]


def test_absent_and_never_created_is_nothing_to_do(database):
    plan = build_plan([mailbox("ghost", state="absent")], {})
    assert not plan.changed


def test_an_empty_inventory_never_deletes(database):
    converge(database, [mailbox("annv.skhcn")])
    plan = build_plan([], _userdb.read_mailboxes(database))
    assert plan.removed == [] and not plan.changed
    with pytest.raises(PlanError, match="empty desired set"):
        build_plan([], _userdb.read_mailboxes(database), exclusive=True)


def test_exclusive_removes_the_unlisted_within_the_cap(database):
    converge(database, [mailbox(f"u{n}") for n in range(4)])
    plan = build_plan([mailbox("u0")], _userdb.read_mailboxes(database), exclusive=True, max_removals=3,
                      exclusive_request="30/QĐ-UBND")
    assert plan.removed == ["u1@sonla.gov.vn", "u2@sonla.gov.vn", "u3@sonla.gov.vn"]
    with pytest.raises(PlanError, match="3 mailboxes would be removed, more than max_removals=2; nothing was changed"):
        build_plan([mailbox("u0")], _userdb.read_mailboxes(database), exclusive=True, max_removals=2,
                   exclusive_request="30/QĐ-UBND")


def test_exclusive_removals_need_the_request_they_are_made_under(database):
    """R11.2: no inventory entry names a mailbox that exclusive removes; the operator's request does."""
    converge(database, [mailbox("u0"), mailbox("u1")])
    with pytest.raises(PlanError, match=r"^exclusive would remove 1 mailbox\(es\) that the inventory does not list "
                                        r"\(first: u1@sonla.gov.vn\); give the request reference .*R11.2"):
        build_plan([mailbox("u0")], _userdb.read_mailboxes(database), exclusive=True)
    assert not build_plan([mailbox("u0"), mailbox("u1")], _userdb.read_mailboxes(database), exclusive=True).changed
    converge(database, [mailbox("u0")], now=LATER, exclusive=True, exclusive_request="30/QĐ-UBND")
    events = database.execute("SELECT address, action, request_ref FROM mailbox_event WHERE at = ?", (LATER,)).fetchall()
    assert [tuple(row) for row in events] == [("u1@sonla.gov.vn", "removed", "30/QĐ-UBND")]


def test_the_removal_cap_counts_explicit_absents(database):
    converge(database, [mailbox(f"u{n}") for n in range(3)])
    with pytest.raises(PlanError, match="max_removals=1"):
        build_plan([mailbox(f"u{n}", state="absent") for n in range(3)], _userdb.read_mailboxes(database), max_removals=1)


def test_duplicates_and_bad_states_are_refused():
    with pytest.raises(PlanError, match="appears twice"):
        build_plan([mailbox("a"), mailbox("a")], {})
    with pytest.raises(PlanError, match="state must be one of"):
        build_plan([mailbox("a", state="gone")], {})


def test_a_failed_write_leaves_the_database_as_it_was(database):
    converge(database, [mailbox("annv.skhcn")])
    plan = build_plan([mailbox("annv.skhcn", quota_mb=4096), mailbox("bad", quota_mb=0)], _userdb.read_mailboxes(database))
    with pytest.raises(Exception, match="CHECK constraint"):
        _userdb.apply_plan(database, plan, {"bad@sonla.gov.vn": "{SSHA512}x"}, LATER)
    rows = _userdb.read_mailboxes(database)
    assert list(rows) == ["annv.skhcn@sonla.gov.vn"] and rows["annv.skhcn@sonla.gov.vn"]["quota_mb"] == 2048


def test_diff_shows_changes_without_secrets(database):
    converge(database, [mailbox("annv.skhcn")])
    plan = build_plan([mailbox("annv.skhcn", quota_mb=4096), mailbox("moi")], _userdb.read_mailboxes(database))
    diff = diff_text(plan)
    assert diff["before"] == "annv.skhcn@sonla.gov.vn: quota_mb=2048\n"
    assert "annv.skhcn@sonla.gov.vn: quota_mb=4096" in diff["after"]
    assert "moi@sonla.gov.vn: Người moi (skhcn, 2048 MB, active)" in diff["after"]
    assert "SSHA512" not in diff["after"] + diff["before"]


def suspend_by(connection, who, at="2026-11-28 10:00:00"):
    connection.execute("UPDATE mailbox SET state = 'suspended', suspended_by = ?, suspended_reason = 'idle', suspended_at = ?",
                       (who, at))


@pytest.mark.parametrize("who", ["lifecycle", "operator"])
def test_a_restore_request_newer_than_the_suspension_lifts_it_with_must_change(database, who):
    """R8.3a-c: the inventory's restore request, dated on or after the suspension, restores the account."""
    converge(database, [mailbox("annv.skhcn")])
    database.execute("UPDATE mailbox SET must_change = 0")
    suspend_by(database, who)
    restore = {"request": "45/QĐ-SKHCN", "date": "2026-11-28"}
    plan = converge(database, [mailbox("annv.skhcn", restore=restore)], now=LATER)
    assert plan.restored == [{"address": "annv.skhcn@sonla.gov.vn", "request": "45/QĐ-SKHCN", "requested": "2026-11-28"}]
    row = _userdb.read_mailboxes(database)["annv.skhcn@sonla.gov.vn"]
    assert (row["state"], row["must_change"], row["suspended_by"]) == ("active", 1, None)  # R8.3c
    event = database.execute("SELECT action, request_ref FROM mailbox_event ORDER BY id DESC LIMIT 1").fetchone()
    assert tuple(event) == ("restored", "45/QĐ-SKHCN")
    again = build_plan([mailbox("annv.skhcn", restore=restore)], _userdb.read_mailboxes(database))
    assert not again.changed and again.refused == []


def test_a_restore_request_older_than_the_suspension_is_held_and_refused(database):
    """A converge never lifts a newer lifecycle suspension with an old restore request (R8.3a)."""
    converge(database, [mailbox("annv.skhcn")])
    suspend_by(database, "lifecycle", at="2027-03-01 02:00:00")
    restore = {"request": "45/QĐ-SKHCN", "date": "2026-12-01"}
    plan = build_plan([mailbox("annv.skhcn", restore=restore)], _userdb.read_mailboxes(database))
    assert not plan.changed and plan.restored == []
    assert [item["address"] for item in plan.held] == ["annv.skhcn@sonla.gov.vn"]
    (refusal,) = plan.refused
    assert "45/QĐ-SKHCN" in refusal["reason"] and "2027-03-01" in refusal["reason"]
    assert plan.summary()["refused"] == 1


def test_a_revoked_address_is_never_created_again(database):
    """R7.2: revocation is final; the converge refuses and says why."""
    plan = build_plan([mailbox("annv.skhcn"), mailbox("haclv.skhcn")], {},
                      revoked={"annv.skhcn@sonla.gov.vn": "2027-03-31 02:00:00"})
    assert [m["address"] for m in plan.added] == ["haclv.skhcn@sonla.gov.vn"]
    (refusal,) = plan.refused
    assert refusal["address"] == "annv.skhcn@sonla.gov.vn" and "R7.2" in refusal["reason"] and "2027-03-31" in refusal["reason"]
    absent = build_plan([mailbox("annv.skhcn", state="absent")], {}, revoked={"annv.skhcn@sonla.gov.vn": "2027-03-31"})
    assert not absent.changed and absent.refused == []


# --- the over-quota flag (R9.2a) -------------------------------------------------------------------


def test_a_new_quota_clears_the_over_quota_flag_and_nothing_else_does(database):
    converge(database, [mailbox("full.skhcn"), mailbox("other.skhcn")])
    database.execute("UPDATE mailbox SET over_quota = 1")  # as Dovecot's quota-flag script does
    converge(database, [mailbox("full.skhcn", quota_mb=4096), mailbox("other.skhcn", display_name="Tên mới")], now=LATER)
    rows = _userdb.read_mailboxes(database)
    # Postfix takes mail for it again; Dovecot sets the flag back if the mailbox is still full.
    assert rows["full.skhcn@sonla.gov.vn"]["over_quota"] == 0
    assert rows["other.skhcn@sonla.gov.vn"]["over_quota"] == 1


def _version_1_database(path):
    """A database as version 1 of the module left it: no over_quota column."""
    connection = _userdb.connect(str(path))
    converge(connection, [mailbox("annv.skhcn")])
    connection.executescript(
        "ALTER TABLE mailbox DROP COLUMN over_quota; UPDATE meta SET value = '1' WHERE key = 'schema_version';"
    )
    connection.close()


def test_an_older_database_is_upgraded_in_place_keeping_its_rows(tmp_path):
    _version_1_database(tmp_path / "users.sqlite")
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    row = _userdb.read_mailboxes(connection)["annv.skhcn@sonla.gov.vn"]
    assert row["over_quota"] == 0 and row["password"] == "{SSHA512}x"
    assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(_userdb.SCHEMA_VERSION)


def test_check_mode_reads_an_older_database_without_upgrading_it(tmp_path):
    _version_1_database(tmp_path / "users.sqlite")
    connection = _userdb.connect(str(tmp_path / "users.sqlite"), upgrade=False)
    assert "over_quota" not in _userdb.read_mailboxes(connection)["annv.skhcn@sonla.gov.vn"]
    assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"


# --- no mailbox ever changes owner (issue 10, R5.3) ------------------------------------------------

def _owned(local_part, owner, **fields):
    return mailbox(local_part, owner_id=owner, **fields)


@pytest.mark.parametrize(("case", "desired"), [
    # addresses.lock.yml lost: pins made again by id order rotate the addresses between people
    ("lock lost", [_owned("annv.skhcn", "p2"), _owned("haclv.skhcn", "p1")]),
    # two pins swapped by hand
    ("pins swapped", [_owned("annv.skhcn", "p2"), _owned("haclv.skhcn", "p1")]),
    # a departed person's pin given to a newcomer, the departed one left without an address
    ("pin reused", [_owned("annv.skhcn", "p9"), _owned("haclv.skhcn", "p2")]),
    # a person pinned to a new address while their mailbox stays
    ("person moved", [_owned("an2.skhcn", "p1"), _owned("haclv.skhcn", "p2")]),
    # an organization's mailbox given to a person
    ("kind changed", [_owned("annv.skhcn", "p1", kind="organization"), _owned("haclv.skhcn", "p2")]),
])
def test_an_existing_mailbox_never_changes_owner(database, case, desired):
    converge(database, [_owned("annv.skhcn", "p1"), _owned("haclv.skhcn", "p2")])
    before = _userdb.read_mailboxes(database)
    with pytest.raises(PlanError, match=r"change owner.*R5\.3.*Nothing was changed.*addresses\.lock\.yml"):
        build_plan(desired, before)
    assert _userdb.read_mailboxes(database) == before


def test_a_retired_address_may_leave_its_owner_for_a_new_one(database):
    """The documented way to give someone a new address: the old one absent, a new pin."""
    converge(database, [_owned("annv.skhcn", "p1")])
    plan = build_plan([_owned("annv.skhcn", "p1", state="absent"), _owned("an2.skhcn", "p1")],
                      _userdb.read_mailboxes(database))
    assert plan.removed == ["annv.skhcn@sonla.gov.vn"] and [m["address"] for m in plan.added] == ["an2.skhcn@sonla.gov.vn"]


# --- a restore request applies once (R8.3a) and every event carries its request (R11.2) --------------

def test_a_restore_request_is_carried_out_once(database):
    """A restore already carried out does not lift a later suspension, even one on the same day."""
    converge(database, [mailbox("annv.skhcn")])
    suspend_by(database, "lifecycle", at="2026-11-28 08:00:00")
    restore = {"request": "45/QĐ-SKHCN", "date": "2026-11-28"}
    assert converge(database, [mailbox("annv.skhcn", restore=restore)]).restored
    suspend_by(database, "operator", at="2026-11-28 18:00:00")  # compromised the same evening (R8.2b)
    plan = build_plan([mailbox("annv.skhcn", restore=restore)], _userdb.read_mailboxes(database),
                      restores_done=_userdb.restores_done(database))
    assert not plan.changed and [item["address"] for item in plan.held] == ["annv.skhcn@sonla.gov.vn"]


def test_every_event_carries_the_request_of_its_entry(database):
    converge(database, [mailbox("annv.skhcn", request="1/QĐ"), mailbox("haclv.skhcn", request="1/QĐ")])
    converge(database, [mailbox("annv.skhcn", request="1/QĐ", quota_mb=4096),
                        mailbox("haclv.skhcn", request="9/QĐ-THÔI", state="absent")], now=LATER)
    events = database.execute("SELECT address, action, request_ref FROM mailbox_event WHERE at = ?", (LATER,)).fetchall()
    assert sorted(map(tuple, events)) == [("annv.skhcn@sonla.gov.vn", "updated", "1/QĐ"),
                                          ("haclv.skhcn@sonla.gov.vn", "removed", "9/QĐ-THÔI")]


# --- handoffs and reissued one-time passwords (R6.1a) ----------------------------------------------

def test_a_handoff_is_committed_with_its_accounts_or_not_at_all(database):
    plan = build_plan([mailbox("annv.skhcn")], {})
    with pytest.raises(KeyError):  # a missing hash fails the transaction before the commit
        _userdb.apply_plan(database, plan, {}, NOW, handoff_id="h1")
    assert _userdb.handoffs_committed(database, ["h1"]) == {}
    _userdb.apply_plan(database, plan, {"annv.skhcn@sonla.gov.vn": "{SSHA512}x"}, NOW, handoff_id="h1")
    assert _userdb.handoffs_committed(database, ["h0", "h1"]) == {"h1": ["annv.skhcn@sonla.gov.vn"]}


def test_only_never_used_accounts_get_a_new_one_time_password(database):
    converge(database, [mailbox("annv.skhcn"), mailbox("haclv.skhcn"), mailbox("maitl.skhcn")])
    database.execute("UPDATE mailbox SET last_login_at = ? WHERE address LIKE 'haclv%'", (NOW,))
    database.execute("UPDATE mailbox SET must_change = 0, password = '{BLF-CRYPT}$2y$x' WHERE address LIKE 'maitl%'")
    assert _userdb.never_used(database) == {"annv.skhcn@sonla.gov.vn"}
    _userdb.apply_plan(database, build_plan([], {}), {"annv.skhcn@sonla.gov.vn": "{SSHA512}new"}, LATER,
                       handoff_id="h2", reissue=["annv.skhcn@sonla.gov.vn"])
    row = _userdb.read_mailboxes(database)["annv.skhcn@sonla.gov.vn"]
    assert (row["password"], row["must_change"]) == ("{SSHA512}new", 1)
    assert _userdb.handoffs_committed(database, ["h2"]) == {"h2": ["annv.skhcn@sonla.gov.vn"]}
    # R11.2: handed over again under the request the account is held under, its inventory entry's.
    event = database.execute("SELECT request_ref, detail FROM mailbox_event WHERE action = 'reissued'").fetchone()
    assert tuple(event) == ("1/QĐ", "handoff=h2")


def test_removed_mail_is_set_aside_then_purged(tmp_path):
    (tmp_path / "sonla.gov.vn" / "annv.skhcn" / "mail").mkdir(parents=True)
    aside, original = _userdb.set_aside_mail(str(tmp_path), "annv.skhcn@sonla.gov.vn", NOW)
    assert not (tmp_path / "sonla.gov.vn" / "annv.skhcn").exists() and os.path.isdir(aside)
    assert original == str(tmp_path / "sonla.gov.vn" / "annv.skhcn")
    assert _userdb.purge_set_aside(str(tmp_path)) == [aside] and not os.path.exists(aside)
    assert _userdb.set_aside_mail(str(tmp_path), "nobody@sonla.gov.vn", NOW) is None


def test_an_owner_change_after_a_retired_mailbox_is_still_refused(database):
    """R5.3: every entry is checked, also those after an absent one (a mutant stopped at the first)."""
    converge(database, [_owned("annv.skhcn", "p1"), _owned("haclv.skhcn", "p2"), _owned("maitl.skhcn", "p3")])
    desired = [_owned("maitl.skhcn", "p3", state="absent"), _owned("annv.skhcn", "p2"), _owned("haclv.skhcn", "p1")]
    with pytest.raises(PlanError, match="2 mailbox"):
        build_plan(desired, _userdb.read_mailboxes(database))
