"""Fixtures shared by the unit tests: small inventories written to a temporary folder."""

import textwrap

import pytest

ORGANIZATIONS = """\
---
organizations:
  - id: skhcn
    name: Sở Khoa học và Công nghệ
    kind: department
    abbreviation: skhcn
  - id: vp-skhcn
    name: Văn phòng Sở
    kind: subunit
    parent: skhcn
    abbreviation: vp
  - id: chiengmung
    name: Xã Chiềng Mung
    kind: commune
"""

PEOPLE = """\
---
people:
  - id: skhcn-0001
    name: Nguyễn Văn An
    organization: skhcn
    request: "1/QĐ-SKHCN"
  - id: skhcn-0002
    name: Lò Văn Hặc
    organization: vp-skhcn
    request: "1/QĐ-SKHCN"
    quota_mb: 4096
  - id: cm-0001
    name: Mùa A Sử
    organization: chiengmung
    request: "7/QĐ-UBND"
"""


class InventoryFolder:
    """An inventory's mail/ folder whose files a test writes and rewrites."""

    def __init__(self, path):
        self.path = path
        (path / "people").mkdir(parents=True)
        self.write("policy.yml", "---\ndomain: sonla.gov.vn\ndepartment: skhcn\n")
        self.write("organizations.yml", ORGANIZATIONS)
        self.write("people/skhcn.yml", PEOPLE)

    def write(self, name, text):
        (self.path / name).write_text(textwrap.dedent(text), encoding="utf-8")
        return self

    def read(self, name):
        return (self.path / name).read_text(encoding="utf-8")

    def __str__(self):
        return str(self.path)


@pytest.fixture
def inventory_folder(tmp_path):
    return InventoryFolder(tmp_path / "mail")
