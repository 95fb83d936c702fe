"""The provincial address book built from the user database (issue 17, docs/webmail.md)."""

import os
import sqlite3
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.sonla.mail.plugins.module_utils import _address_book, _userdb
from ansible_collections.sonla.mail.plugins.module_utils._mailbox_plan import build_plan, validate_desired


def test_fold_drops_diacritics_case_and_extra_spaces():
    assert _address_book.fold("Nguyễn  Văn An") == "nguyen van an"
    assert _address_book.fold("ĐINH Thị Ngọc Ánh") == "dinh thi ngoc anh"
    assert _address_book.fold("Sở Khoa học và Công nghệ") == "so khoa hoc va cong nghe"


@given(st.text())
def test_fold_is_idempotent_and_ascii_for_vietnamese(text):
    folded = _address_book.fold(text)
    assert _address_book.fold(folded) == folded
    vietnamese = "ăâđêôơưáàảãạắằẳẵặấầẩẫậéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ"
    assert _address_book.fold("".join(ch for ch in text if ch.lower() in vietnamese)).isascii()


def _fold_whole(text):
    """The definition, on the whole string at once: what fold computes word by word (issue 19)."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return " ".join("".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn").lower().split())


@given(st.text(alphabet=st.sampled_from("ĐđAaăÂêÔơƯ \t\u00a0\u0301\u0323ΣσİIéẸxyz")) | st.text())
def test_fold_word_by_word_is_the_whole_strings_fold(text):
    assert _address_book.fold(text) == _fold_whole(text)


def make_userdb(path):
    connection = _userdb.connect(path)
    desired = validate_desired([
        {"address": "skhcn@sonla.gov.vn", "kind": "organization", "owner_id": "skhcn",
         "display_name": "Sở Khoa học và Công nghệ", "organization": "skhcn", "quota_mb": 64},
        {"address": "annv.skhcn@sonla.gov.vn", "kind": "person", "owner_id": "p1", "display_name": "Nguyễn Văn An",
         "organization": "skhcn", "quota_mb": 64},
        {"address": "chienlv.skhcn@sonla.gov.vn", "kind": "person", "owner_id": "p2", "display_name": "Lò Văn Chiến",
         "organization": "skhcn", "quota_mb": 64, "state": "suspended", "reason": "kiểm thử"},
    ])
    plan = build_plan(desired, {})
    _userdb.apply_plan(connection, plan, {item["address"]: "{PLAIN}x" for item in plan.added}, "2026-12-01 08:00:00")
    return connection


def test_the_directory_holds_every_active_mailbox_by_agency_and_no_secret(tmp_path):
    userdb_path, path = str(tmp_path / "users.sqlite"), str(tmp_path / "directory.sqlite")
    userdb = make_userdb(userdb_path)
    assert _address_book.write_directory(userdb_path, path)
    directory = sqlite3.connect(path)
    assert directory.execute("SELECT id, name FROM agency").fetchall() == [("skhcn", "Sở Khoa học và Công nghệ")]
    rows = directory.execute("SELECT address, name, folded, agency, kind FROM entry ORDER BY address").fetchall()
    assert rows == [  # the suspended mailbox is left out
        ("annv.skhcn@sonla.gov.vn", "Nguyễn Văn An", "nguyen van an annv.skhcn@sonla.gov.vn", "skhcn", "person"),
        ("skhcn@sonla.gov.vn", "Sở Khoa học và Công nghệ", "so khoa hoc va cong nghe skhcn@sonla.gov.vn", "skhcn",
         "organization"),
    ]
    columns = {row[1] for table in ("agency", "entry") for row in directory.execute(f"PRAGMA table_info({table})")}
    assert not columns & {"password", "state", "suspended_reason"}
    assert os.stat(path).st_mode & 0o777 == 0o644
    # Unchanged: the file is left alone; a restored mailbox comes back.
    assert not _address_book.write_directory(userdb_path, path)
    userdb.execute("UPDATE mailbox SET state = 'active' WHERE address = 'chienlv.skhcn@sonla.gov.vn'")
    assert _address_book.write_directory(userdb_path, path)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM entry WHERE folded LIKE '%lo van chien%'").fetchone() == (1,)
