"""Structured garbage thrown at the inventory loader and the mailboxes planner (issue 10).

Whatever the input, the loader ends with success or with problems that each name a file and a real line on
one printable line; it never raises, and a refused inventory writes nothing. The planner raises only
PlanError. Bounded: a fixed number of derandomized examples, so CI time stays flat.
"""

import os

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.sonla.mail.plugins.module_utils._inventory import (
    ORGANIZATION_KEYS,
    PERSON_KEYS,
    InventoryProblems,
    converge_inventory,
    load_inventory,
)
from ansible_collections.sonla.mail.plugins.module_utils._mailbox_plan import (
    MAILBOX_FIELDS,
    PlanError,
    build_plan,
    validate_desired,
)

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Text an attacker or a tired operator could type: Vietnamese, controls, bidi marks, emoji, YAML syntax.
HOSTILE_CHARACTERS = "aăâđêôơưzAĐ09 .-'\u2019_/:#&*!|>{}[],@\"\\\n\r\t\x00\x1b\u202e\u2028😀"
hostile_text = st.text(st.sampled_from(list(HOSTILE_CHARACTERS)), max_size=40)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), hostile_text,
                    st.sampled_from(["skhcn", "active", "absent", "suspended", "2027-02-30", "2026-11-01", "department",
                                     "subunit", "commune", "1/QĐ"]))


def mappings(keys):
    return st.dictionaries(st.one_of(st.sampled_from(sorted(keys)), hostile_text), values, max_size=len(keys) + 1)


values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(hostile_text, inner, max_size=3)), max_leaves=12)
organization = mappings(ORGANIZATION_KEYS)
person = mappings(PERSON_KEYS)


def as_yaml(data) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


files = st.fixed_dictionaries({
    "policy.yml": st.one_of(st.just(None), mappings({"domain", "webmail_host", "department", "policy"}).map(as_yaml)),
    "organizations.yml": st.one_of(st.lists(organization, max_size=4).map(lambda o: as_yaml({"organizations": o})),
                                   hostile_text),
    "people/a.yml": st.one_of(st.lists(person, max_size=5).map(lambda p: as_yaml({"people": p})), hostile_text,
                              values.map(as_yaml)),
    "addresses.lock.yml": st.one_of(st.just(None), st.dictionaries(hostile_text, scalars, max_size=3)
                                    .map(lambda a: as_yaml({"addresses": a}))),
})


def write(folder, contents):
    os.makedirs(folder / "people", exist_ok=True)
    for name, text in contents.items():
        path = folder / name
        if text is None:
            if path.exists():
                path.unlink()
        else:
            path.write_text(text, encoding="utf-8")


def assert_well_formed(problems):
    for problem in problems:
        text = str(problem)
        assert text.isprintable(), text
        assert problem.file and int(text.split(":")[1]) >= 1, text


@SETTINGS
@given(contents=files)
def test_the_loader_reports_or_succeeds_and_writes_nothing_when_refused(tmp_path, contents):
    folder = tmp_path / "mail"
    write(folder, contents)
    inventory = load_inventory(str(folder))
    assert_well_formed(inventory.problems)
    lock = folder / "addresses.lock.yml"
    before = lock.read_bytes() if lock.exists() else None
    try:
        converge_inventory(str(folder))
    except InventoryProblems as error:
        assert error.problems
        assert (lock.read_bytes() if lock.exists() else None) == before  # nothing written on failure


desired_entries = st.lists(st.one_of(values, mappings(set(MAILBOX_FIELDS))), max_size=6)


@SETTINGS
@given(entries=desired_entries, exclusive=st.booleans())
def test_the_planner_refuses_with_plan_error_only(entries, exclusive):
    try:
        desired = validate_desired(entries)
        build_plan(desired, {}, exclusive=exclusive, max_removals=1)
    except PlanError as error:
        assert str(error)
