"""R11.2: in a merge request, every changed entry carries a request reference of its own (scripts/lint-inventory)."""

from ansible_collections.sonla.mail.plugins.module_utils._inventory import load_inventory, unreferenced_changes


def changed(inventory_folder, old: str, new: str, name: str = "people/skhcn.yml"):
    base = load_inventory(str(inventory_folder))
    inventory_folder.write(name, inventory_folder.read(name).replace(old, new))
    current = load_inventory(str(inventory_folder))
    assert not current.problems, current.problems
    return [str(problem) for problem in unreferenced_changes(base, current)]


def test_a_removal_under_the_creation_request_is_refused_with_its_line(inventory_folder):
    problems = changed(inventory_folder, '    organization: chiengmung\n    request: "7/QĐ-UBND"\n',
                       '    organization: chiengmung\n    request: "7/QĐ-UBND"\n    state: absent\n')
    assert problems == [(f"{inventory_folder}/people/skhcn.yml:12: R11.2: person 'cm-0001': state changed under the same "
                         "request '7/QĐ-UBND'; a change or removal carries the reference of its own request")]


def test_a_removal_with_its_own_request_passes(inventory_folder):
    assert changed(inventory_folder, '    organization: chiengmung\n    request: "7/QĐ-UBND"\n',
                   '    organization: chiengmung\n    request: "31/QĐ-UBND"\n    state: absent\n') == []


def test_a_quota_change_under_the_old_request_is_refused(inventory_folder):
    problems = changed(inventory_folder, "    quota_mb: 4096\n", "    quota_mb: 8192\n")
    assert len(problems) == 1 and "person 'skhcn-0002': quota_mb changed under the same request" in problems[0]


def test_a_new_person_and_an_unchanged_one_need_nothing_more(inventory_folder):
    assert changed(inventory_folder, "people:\n", "people:\n  - id: new-1\n    name: Lò Văn Mới\n"
                                                  "    organization: skhcn\n    request: \"2/QĐ\"\n") == []


def test_an_organization_change_needs_a_request(inventory_folder):
    problems = changed(inventory_folder, "    name: Xã Chiềng Mung\n", "    name: Phường Chiềng Mung\n", "organizations.yml")
    assert problems == [(f"{inventory_folder}/organizations.yml:12: R11.2: organization 'chiengmung': name changed without "
                         "a 'request'; a change or removal carries the reference of its own request (R7.1b)")]
