"""Hostile and malformed inventories are refused with file:line: rule: message, in bounded time and memory
(issue 10, classes 2, 4, 5 and 7). Each case here was accepted, crashed or hung before."""

import os
import resource
import time

import pytest

from ansible_collections.sonla.mail.plugins.module_utils._inventory import load_inventory, resolve


def problems_of(folder):
    return [str(problem) for problem in load_inventory(str(folder)).problems]


def only_problem(folder):
    problems = problems_of(folder)
    assert len(problems) == 1, problems
    return problems[0]


def person(**fields):
    entry = {"id": "skhcn-0009", "name": "Lò Văn Hặc", "organization": "skhcn", "request": "1/QĐ-SKHCN", **fields}
    return "---\npeople:\n  - " + "\n    ".join(f"{key}: {value}" for key, value in entry.items()) + "\n"


# --- class 2: values that reach templates ---------------------------------------------------------

@pytest.mark.parametrize("host", [
    "mail.sonla.gov.vn'; system('id'); //",
    "mail.sonla.gov.vn; location / { root /etc; }",
    "x' UNION SELECT password FROM mailbox --",
    "-mail.sonla.gov.vn", "mail..sonla.gov.vn", "MAIL.sonla.gov.vn", "a" * 64 + ".gov.vn",
])
def test_webmail_host_must_be_a_host_name(inventory_folder, host):
    inventory_folder.write("policy.yml", f"---\ndomain: sonla.gov.vn\nwebmail_host: \"{host}\"\n")
    assert only_problem(inventory_folder).startswith(f"{inventory_folder}/policy.yml:3: R3.1: policy file: webmail_host")


def test_a_good_webmail_host_is_kept(inventory_folder):
    inventory_folder.write("policy.yml", "---\ndomain: sonla.gov.vn\nwebmail_host: thudientu.sonla.gov.vn\n")
    assert load_inventory(str(inventory_folder)).webmail_host == "thudientu.sonla.gov.vn"


# --- class 4: bounded parsing ---------------------------------------------------------------------

BOMB = """---
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
people: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


@pytest.mark.parametrize(("text", "message"), [
    (BOMB, "2: yaml: an anchor (&) is not allowed"),
    ("---\npeople: &p\n  - *p\n", "2: yaml: an anchor (&) is not allowed"),
    ("---\npeople:\n  - !!python/object:os.system {id: x}\n", "3: yaml: a tag (!) is not allowed"),
    ("---\npeople: " + "[" * 5000 + "]" * 5000 + "\n", ": yaml: "),
    ("---\npeople:\n" + "  " + "- " * 100000 + "x\n", "nested deeper than 32 levels"),
])
def test_anchors_aliases_tags_and_deep_nesting_are_refused_in_bounded_time_and_memory(inventory_folder, text, message):
    inventory_folder.write("people/bomb.yml", text)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    problem = only_problem(inventory_folder)
    assert time.monotonic() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
    assert problem.startswith(f"{inventory_folder}/people/bomb.yml:") and message in problem


def test_a_named_pipe_is_refused_without_waiting(inventory_folder):
    os.mkfifo(inventory_folder.path / "people" / "pipe.yml")
    expected = f"{inventory_folder}/people/pipe.yml:1: file: is not a regular file (a symlink, folder or pipe)"
    assert only_problem(inventory_folder) == expected


def test_a_symlink_is_refused_and_its_target_never_shown(inventory_folder, tmp_path):
    secret = tmp_path / "secret.yml"
    secret.write_text("people:\n  - id: root-password-is-hunter2\n")
    os.symlink(secret, inventory_folder.path / "people" / "link.yml")
    os.replace(inventory_folder.path / "organizations.yml", tmp_path / "organizations.yml")
    os.symlink(tmp_path / "organizations.yml", inventory_folder.path / "organizations.yml")
    problems = problems_of(inventory_folder)
    assert f"{inventory_folder}/people/link.yml:1: file: is not a regular file (a symlink, folder or pipe)" in problems
    assert any("organizations.yml:1: file: is a symbolic link" in problem for problem in problems)
    assert "hunter2" not in "\n".join(problems)


def test_an_oversized_file_is_refused_unread(inventory_folder, monkeypatch):
    from ansible_collections.sonla.mail.plugins.module_utils import _yaml_lines
    monkeypatch.setattr(_yaml_lines, "MAX_FILE_BYTES", 400)  # the fixture's files hold about 300 bytes
    inventory_folder.write("people/big.yml", person() + "# padding\n" * 40)
    assert "people/big.yml:1: file: is " in only_problem(inventory_folder)


# --- class 5: dates and lengths --------------------------------------------------------------------

@pytest.mark.parametrize("day", ["2027-02-30", "2027-13-01", "0000-01-01", "2027-1-1"])
def test_an_impossible_leave_date_is_refused(inventory_folder, day):
    inventory_folder.write("people/new.yml", person(leave_until=day))
    assert "people/new.yml:7: R8.2a: person 'skhcn-0009': 'leave_until'" in only_problem(inventory_folder)


def test_a_restore_dated_in_the_future_is_refused(inventory_folder):
    inventory_folder.write("people/new.yml", person(restore='{request: "45/QĐ", date: 2099-01-01}'))
    problem = only_problem(inventory_folder)
    assert ":7: R8.3a:" in problem and "2099-01-01 is in the future" in problem


@pytest.mark.parametrize(("field", "value", "message"), [
    ("id", "a" * 65, "'id'"),
    ("name", "Lò Văn " + "Hặc" * 60, "more than 128"),
    ("request", "1/QĐ" * 40, "more than 128"),
])
def test_text_lengths_are_bounded(inventory_folder, field, value, message):
    inventory_folder.write("people/new.yml", person(**{field: value}))
    assert message in only_problem(inventory_folder)


def test_an_address_longer_than_rfc_5321_allows_is_refused(inventory_folder):
    long_name = "Lò Văn Hặc" + "c" * 70  # 80 characters: a valid name, but not a valid address
    inventory_folder.write("people/new.yml", person(name=long_name))
    inventory = load_inventory(str(inventory_folder))
    assert inventory.problems == []
    resolve(inventory)
    (problem,) = map(str, inventory.problems)
    assert "R5.2" in problem and "more than 64 characters before the @ (RFC 5321)" in problem


# --- class 7: input that passed silently -----------------------------------------------------------

@pytest.mark.parametrize(("name", "text", "message"), [
    ("people/empty.yml", "", "people/empty.yml:1: schema: the file is empty"),
    ("people/comments.yml", "---\n# nobody yet\n", "people/comments.yml:1: schema: the file is empty"),
    ("people/extra.yaml", person(), "people/extra.yaml:1: file: people/ holds only <agency>.yml files"),
    ("people/.hidden.yml", person(), "people/.hidden.yml:1: file: people/ holds only <agency>.yml files"),
    ("people/keys.yml", person() + "staff: []\n", "people/keys.yml:7: schema: unknown top-level key 'staff'"),
    ("policy.yml", "", "policy.yml:1: schema: the file is empty"),
    ("addresses.lock.yml", "addresses: {}\nextra: 1\n", "addresses.lock.yml:2: schema: unknown top-level key 'extra'"),
])
def test_files_that_used_to_pass_silently_are_refused(inventory_folder, name, text, message):
    inventory_folder.write(name, text)
    assert message in only_problem(inventory_folder)


@pytest.mark.parametrize("name", [
    "Lò Văn\\nHặc", "Lò Văn\\rHặc", "Lò \\x1b[31mVăn\\x1b[0m Hặc", "Lò Văn \\u202eHặc", "Lò\\0Văn", "Lò Văn\\u2028Hặc",
])
def test_control_bidi_and_separator_characters_are_refused_and_never_printed(inventory_folder, name):
    inventory_folder.write("people/new.yml", person(name=f'"{name}"'))
    problem = only_problem(inventory_folder)
    assert ":4: schema: person 'skhcn-0009': 'name' holds a control" in problem
    assert problem.isprintable()


@pytest.mark.parametrize("name", ["Lò Văn 😀", "Lò Văn Hặc ★", "Lò Văn H4c", "Lò <Văn> Hặc"])
def test_symbols_and_emoji_in_names_are_refused_not_dropped(inventory_folder, name):
    inventory_folder.write("people/new.yml", person(name=f'"{name}"'))
    assert ":4: R5.2: person 'skhcn-0009': 'name'" in only_problem(inventory_folder)


def test_names_with_vietnamese_letters_hyphens_and_apostrophes_pass(inventory_folder):
    inventory_folder.write("people/new.yml", person(name='"H\'Hen Niê-Ksor Thị Đào"'))
    assert problems_of(inventory_folder) == []


def test_a_newline_in_a_file_name_cannot_forge_a_report_line(inventory_folder):
    inventory_folder.write("people/x.yml\nfake.yml:1: ok.yml", "people: 3\n")
    problems = problems_of(inventory_folder)
    assert problems and all("\n" not in problem for problem in problems)
    assert all("\\n" in problem for problem in problems)


@pytest.mark.parametrize("text", [
    "---\npeople:\n  - just a string\n",
    "---\npeople:\n  - 42\n",
    "---\npeople:\n  - [a, b]\n",
    "---\npeople:\n  - id: x\n    restore: yes please\n",
    "---\n- a list\n",
    "---\nplain text\n",
])
def test_every_problem_names_a_real_line(inventory_folder, text):
    inventory_folder.write("people/odd.yml", text)
    for problem in problems_of(inventory_folder):
        line = int(problem.split(":")[1])
        assert line >= 1, problem


# --- class 3: a lost lock is never a re-allocation -------------------------------------------------

def test_an_emptied_lock_is_refused(inventory_folder):
    inventory_folder.write("addresses.lock.yml", "---\naddresses: {}\n")
    assert "addresses.lock.yml:1: R5.3: pins no address: restore it from git" in only_problem(inventory_folder)


def test_an_organization_address_longer_than_rfc_5321_allows_is_refused(inventory_folder):
    """A subunit of 32 characters under a department of 32 would pin a 65-character local part."""
    inventory_folder.write("organizations.yml", "---\norganizations:\n"
                           f"  - {{id: big, name: Sở Lớn, kind: department, abbreviation: {'a' * 32}}}\n"
                           f"  - {{id: sub, name: Phòng Lớn, kind: subunit, parent: big, abbreviation: {'b' * 32}}}\n")
    inventory_folder.write("people/skhcn.yml", "---\npeople:\n  - {id: p-1, name: Lò Văn Hặc, organization: big, request: '1'}\n")
    inventory_folder.write("policy.yml", "---\ndomain: sonla.gov.vn\n")
    inventory = load_inventory(str(inventory_folder))
    assert inventory.problems == []
    resolution = resolve(inventory)
    (problem,) = map(str, inventory.problems)
    assert ":4: R5.1c: organization 'sub'" in problem and "more than 64 characters" in problem
    assert "org:sub" not in resolution.addresses  # never pinned, so the lock stays loadable


def test_an_address_problem_names_the_persons_line(inventory_folder):
    inventory_folder.write("people/new.yml", "---\npeople:\n  - id: x-1\n    name: Lò Văn Hặc" + "c" * 70 +
                           "\n    organization: skhcn\n    request: '1'\n")
    inventory = load_inventory(str(inventory_folder))
    resolve(inventory)
    (problem,) = map(str, inventory.problems)
    assert "people/new.yml:3: R5.2: person 'x-1'" in problem


def test_a_policy_file_that_is_a_list_says_so_plainly(inventory_folder):
    inventory_folder.write("policy.yml", "---\n- domain: sonla.gov.vn\n")
    assert "policy file must be a mapping, got a list" in only_problem(inventory_folder)
