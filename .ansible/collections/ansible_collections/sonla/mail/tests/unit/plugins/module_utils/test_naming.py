# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mailbox names (R5): transliteration, personal and organization addresses, clashes."""

from __future__ import annotations

import itertools
import unicodedata

import pytest

from ansible_collections.sonla.mail.plugins.module_utils._naming import (
    MAX_SPELLED_VARIANT,
    first_free_person_local_part,
    is_valid_local_part,
    organization_local_part,
    person_candidates,
    person_local_part,
    split_name,
    transliterate,
)

# (full name, agency, expected R5.2 local part)
PEOPLE = [
    # Kinh
    ("Nguyễn Văn An", "skhcn", "annv.skhcn"),
    ("Trần Thị Bình", "stc", "binhtt.stc"),
    ("Lê Minh Đức", "snv", "duclm.snv"),
    ("Phạm Quốc Cường", "sxd", "cuongpq.sxd"),
    ("Hoàng Thị Thu Hằng", "syt", "hanghtt.syt"),
    ("Vũ Đức Dũng", "sct", "dungvd.sct"),
    ("Đặng Thị Hương", "sgddt", "huongdt.sgddt"),
    ("Bùi Xuân Trường", "stp", "truongbx.stp"),
    ("Đỗ Thị Ngọc Ánh", "vpubnd", "anhdtn.vpubnd"),
    ("Ngô Quang Huy", "ttt", "huynq.ttt"),
    ("Dương Văn Đông", "snnmt", "dongdv.snnmt"),
    ("Trịnh Thị Yến", "svhttdl", "yentt.svhttdl"),
    ("Phan Thanh Tùng", "tohieu", "tungpt.tohieu"),
    ("Nguyễn Thị Minh Khai", "skhcn", "khaintm.skhcn"),
    ("Tôn Nữ Thị Lan", "skhcn", "lantnt.skhcn"),
    ("Công Tằng Tôn Nữ Thị Ngọc", "skhcn", "ngoccttnt.skhcn"),
    # Thái
    ("Lò Văn Hặc", "chiengmung", "haclv.chiengmung"),
    ("Cầm Thị Ngọc", "muongla", "ngocct.muongla"),
    ("Quàng Văn Đôi", "thuanchau", "doiqv.thuanchau"),
    ("Lường Văn Pản", "quynhnhai", "panlv.quynhnhai"),
    ("Tòng Thị Ơn", "songma", "ontt.songma"),
    ("Hà Văn Tuyên", "phuyen", "tuyenhv.phuyen"),
    ("Vì Thị Khằm", "bacyen", "khamvt.bacyen"),
    ("Lù Văn Chăn", "sopcop", "chanlv.sopcop"),
    ("Điêu Chính Tởi", "sdttg", "toidc.sdttg"),
    ("Cầm Vĩnh Ính", "chiengcoi", "inhcv.chiengcoi"),
    # H'Mông
    ("Mùa A Sử", "skhcn", "suma.skhcn"),
    ("Thào A Chứ", "sopcop", "chuta.sopcop"),
    ("Giàng A Lử", "bacyen", "luga.bacyen"),
    ("Sùng Thị Mỷ", "songma", "myst.songma"),
    ("Vàng A Tủa", "muongla", "tuava.muongla"),
    ("Lầu Thị Dế", "thuanchau", "delt.thuanchau"),
    ("Hờ A Dính", "mocchau", "dinhha.mocchau"),
    ("Giàng Seo Phử", "sdttg", "phugs.sdttg"),
    # Mường
    ("Đinh Công Bảng", "phuyen", "bangdc.phuyen"),
    ("Bạch Thị Vân", "phuyen", "vanbt.phuyen"),
    ("Đinh Thị Xuân", "syt", "xuandt.syt"),
    # Dao
    ("Bàn Văn Quẩy", "mocchau", "quaybv.mocchau"),
    ("Triệu Thị Mây", "mocchau", "maytt.mocchau"),
    ("Bàn Thị Nhất", "sgddt", "nhatbt.sgddt"),
    # Khơ Mú, Lào
    ("Vì Văn Hón", "songma", "honvv.songma"),
    ("Quàng Văn Thướng", "sopcop", "thuongqv.sopcop"),
    ("Lò Thị Bun", "chiengsinh", "bunlt.chiengsinh"),
    # Two words, one word
    ("Lò Pản", "quynhnhai", "panl.quynhnhai"),
    ("Sử", "skhcn", "su.skhcn"),
]


@pytest.mark.parametrize(("name", "agency", "expected"), PEOPLE, ids=[p[0] for p in PEOPLE])
def test_r5_2_person_local_part(name, agency, expected):
    """R5.2: <given name in full><initials of family and middle names>.<agency>."""
    assert person_local_part(name, agency) == expected


@pytest.mark.parametrize(("name", "agency", "expected"), PEOPLE, ids=[p[0] for p in PEOPLE])
def test_r5_2_person_local_part_nfd_and_uppercase(name, agency, expected):
    """R5: decomposed (NFD) and upper-case input give the same address as NFC input."""
    assert person_local_part(unicodedata.normalize("NFD", name), agency) == expected
    assert person_local_part(name.upper(), agency) == expected
    assert person_local_part(unicodedata.normalize("NFD", name.upper()), agency) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("  Lò   Văn  Hặc ", "haclv.skhcn"),
        ("Cầm\tThị\nNgọc", "ngocct.skhcn"),
        ("nguyễn văn an", "annv.skhcn"),
        ("NGUYỄN VĂN AN", "annv.skhcn"),
        ("Nguyen Van An", "annv.skhcn"),
        ("Nguyễn Văn An.", "annv.skhcn"),
        ("Nguyễn - Văn An", "annv.skhcn"),
        ("\u00d0inh Công Bảng", "bangdc.skhcn"),  # Icelandic eth typed for Đ
        ("Lò Văn Ka-Nhông", "kanhonglv.skhcn"),
        ("Vừ A H'Mông", "hmongva.skhcn"),
        ("Vừ A H\u2019Mông", "hmongva.skhcn"),
    ],
)
def test_r5_2_messy_input(name, expected):
    """R5: extra whitespace, punctuation, look-alike letters and plain ASCII input."""
    assert person_local_part(name, "skhcn") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Chiềng Mung", "chiengmung"),
        ("Đôi", "doi"),
        ("đĐ", "dd"),
        ("H'Mông", "hmong"),
        ("H\u2019Mông", "hmong"),
        ("Khơ Mú", "khomu"),
        ("Mùa A Sử", "muaasu"),
        ("aàáảãạăằắẳẵặâầấẩẫậ", "a" * 18),
        ("eèéẻẽẹêềếểễệ", "e" * 12),
        ("iìíỉĩị", "i" * 6),
        ("oòóỏõọôồốổỗộơờớởỡợ", "o" * 18),
        ("uùúủũụưừứửữự", "u" * 12),
        ("yỳýỷỹỵ", "y" * 6),
        ("ƯỚC ƠN", "uocon"),
        ("Sở KH&CN (2025)", "sokhcn2025"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_r5_transliterate(text, expected):
    """R5: lowercase ASCII, no spaces, no diacritics; R5.2: đ/Đ -> d."""
    assert transliterate(text) == expected
    assert transliterate(unicodedata.normalize("NFD", text)) == expected


def test_r5_transliterate_every_vietnamese_letter():
    """R5: every precomposed Vietnamese letter, NFC or NFD, becomes exactly one a-z letter."""
    vowels = "aăâeêioôơuưy"
    tones = ["", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323"]
    letters = [unicodedata.normalize("NFC", v + t) for v in vowels for t in tones] + ["đ"]
    for letter in letters + [c.upper() for c in letters]:
        for form in ("NFC", "NFD"):
            out = transliterate(unicodedata.normalize(form, letter))
            assert len(out) == 1 and "a" <= out <= "z", (letter, form, out)


def test_r5_transliterate_rejects_non_text():
    with pytest.raises(TypeError):
        transliterate(None)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Nguyễn Văn An", ("Nguyễn", ("Văn",), "An")),
        ("Nguyễn Thị Minh Khai", ("Nguyễn", ("Thị", "Minh"), "Khai")),
        ("Tôn Nữ Thị Lan", ("Tôn", ("Nữ", "Thị"), "Lan")),
        ("Lò Pản", ("Lò", (), "Pản")),
        ("Sử", ("", (), "Sử")),
        ("  Mùa   A  Sử  ", ("Mùa", ("A",), "Sử")),
        (unicodedata.normalize("NFD", "Quàng Văn Đôi"), ("Quàng", ("Văn",), "Đôi")),
    ],
)
def test_r5_2_split_name(name, expected):
    """R5.2: family name first, middle name(s), given name last; output is NFC."""
    assert split_name(name) == expected


@pytest.mark.parametrize("name", ["", "   ", "\t\n", "-", "'  ."])
def test_r5_2_empty_name_is_refused(name):
    """R5.2: a name without letters cannot make an address; the message says why."""
    with pytest.raises(ValueError, match=r"must contain letters \(R5\.2\)"):
        person_local_part(name, "skhcn")
    with pytest.raises(ValueError, match="R5.2"):
        split_name(name)
    with pytest.raises(ValueError, match="R5.2"):
        next(person_candidates(name, "skhcn"))


def test_r5_2_non_text_name_is_refused():
    with pytest.raises(TypeError):
        person_local_part(None, "skhcn")


@pytest.mark.parametrize("agency", ["", "SKHCN", "sở", "s khcn", "a..b", ".skhcn", None])
def test_r5_2_bad_agency_is_refused(agency):
    with pytest.raises(ValueError, match="R5.2"):
        person_local_part("Nguyễn Văn An", agency)


# --- R5.1 organizations -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        ("commune", "Xã Chiềng Mung", "chiengmung"),
        ("ward", "Phường Tô Hiệu", "tohieu"),
        ("ward", "Phường Chiềng An", "chiengan"),
        ("ward", "Phường Chiềng Cơi", "chiengcoi"),
        ("ward", "Phường Chiềng Sinh", "chiengsinh"),
        ("ward", "Phường Mộc Châu", "mocchau"),
        ("commune", "Xã Mường La", "muongla"),
        ("commune", "Xã Thuận Châu", "thuanchau"),
        ("commune", "Xã Sông Mã", "songma"),
        ("commune", "Xã Bắc Yên", "bacyen"),
        ("commune", "Xã Phù Yên", "phuyen"),
        ("commune", "Xã Quỳnh Nhai", "quynhnhai"),
        ("commune", "Xã Sốp Cộp", "sopcop"),
        ("commune", "Thị trấn Ít Ong", "itong"),
        ("commune", "XÃ CHIỀNG MUNG", "chiengmung"),
        ("commune", "xa chieng mung", "chiengmung"),
        ("commune", "UBND xã Chiềng Mung", "chiengmung"),
        ("commune", "Ủy ban nhân dân xã Mường La", "muongla"),
        ("commune", "Uỷ ban nhân dân xã Mường La", "muongla"),
        ("commune", "Chiềng Mung", "chiengmung"),
        ("commune", "Xã Xá Lượng", "xaluong"),  # the prefix goes once, the name stays
        ("commune", "Xá Lượng", "xaluong"),  # "Xá" is a name, not the prefix "Xã"
        ("ward", unicodedata.normalize("NFD", "Phường Chiềng Cơi"), "chiengcoi"),
    ],
)
def test_r5_1b_commune_and_ward(kind, name, expected):
    """R5.1b: the commune or ward name without its administrative prefix, transliterated."""
    assert organization_local_part(kind, name) == expected


def test_r5_1b_abbreviation_overrides_name():
    """R5.1b: two communes with the same name are told apart by an explicit abbreviation."""
    assert organization_local_part("commune", "Xã Chiềng Mung", "chiengmungms") == "chiengmungms"


@pytest.mark.parametrize("name", ["Xã", "Phường", "Thị trấn", "UBND xã", ""])
def test_r5_1b_prefix_only_is_refused(name):
    with pytest.raises(ValueError, match="R5.1b"):
        organization_local_part("commune", name)


@pytest.mark.parametrize(
    ("name", "abbreviation"),
    [
        ("Văn phòng UBND tỉnh", "vpubnd"),
        ("Sở Khoa học và Công nghệ", "skhcn"),
        ("Sở Giáo dục và Đào tạo", "sgddt"),
        ("Sở Văn hóa, Thể thao và Du lịch", "svhttdl"),
    ],
)
def test_r5_1a_department(name, abbreviation):
    """R5.1a: a department's mailbox is its abbreviation."""
    assert organization_local_part("department", name, abbreviation) == abbreviation


@pytest.mark.parametrize(
    ("abbreviation", "parent", "expected"),
    [("vp", "skhcn", "vp.skhcn"), ("khtc", "stc", "khtc.stc"), ("vp", "chiengmung", "vp.chiengmung"),
     ("kthtdt", "tohieu", "kthtdt.tohieu")],
)
def test_r5_1c_subunit(abbreviation, parent, expected):
    """R5.1c: <sub-unit abbreviation>.<agency abbreviation or commune name>."""
    assert organization_local_part("subunit", "Văn phòng", abbreviation, parent) == expected


@pytest.mark.parametrize(
    ("kind", "abbreviation", "parent", "rule"),
    [
        ("department", None, None, "R5.1a"),
        ("department", "SKHCN", None, "R5.1a"),
        ("department", "s.khcn", None, "R5.1a"),
        ("department", "sở", None, "R5.1a"),
        ("commune", "chieng mung", None, "R5.1b"),
        ("subunit", None, "skhcn", "R5.1c"),
        ("subunit", "vp", None, "R5.1c"),
        ("subunit", "vp", "Skhcn", "R5.1c"),
        ("subunit", "v.p", "skhcn", "R5.1c"),
    ],
)
def test_r5_1_invalid_organization(kind, abbreviation, parent, rule):
    with pytest.raises(ValueError, match=rule.replace(".", r"\.")):
        organization_local_part(kind, "Tên", abbreviation, parent)


def test_r5_1_unknown_kind():
    with pytest.raises(ValueError, match="unknown organization kind 'district'"):
        organization_local_part("district", "Huyện Mai Sơn", "maison")


# --- is_valid_local_part -----------------------------------------------------------------

@pytest.mark.parametrize("text", ["skhcn", "annv.skhcn", "vp.skhcn", "annv2.skhcn", "a.b.c", "x1"])
def test_r5_valid_local_part(text):
    assert is_valid_local_part(text)


@pytest.mark.parametrize(
    "text", ["", ".", ".skhcn", "skhcn.", "annv..skhcn", "Annv.skhcn", "an nv", "ăn", "a_b", "a-b", "a@b", None, 5]
)
def test_r5_invalid_local_part(text):
    assert not is_valid_local_part(text)


# --- R5.3 clashes ---------------------------------------------------------------------------

def test_r5_3_first_candidate_is_r5_2_form():
    for name, agency, expected in PEOPLE:
        assert next(person_candidates(name, agency)) == expected


def test_r5_3_candidate_order():
    """R5.3: R5.2 form, family spelled out, middle names spelled out, then numbered."""
    got = list(itertools.islice(person_candidates("Nguyễn Văn An", "skhcn"), 6))
    assert got == ["annv.skhcn", "annguyenv.skhcn", "annvan.skhcn", "annv2.skhcn", "annv3.skhcn", "annv4.skhcn"]


def test_r5_3_candidates_skip_repeats_and_missing_parts():
    """R5.3: no middle name -> no middle variant; a variant equal to an earlier one is skipped."""
    assert list(itertools.islice(person_candidates("Lò Pản", "quynhnhai"), 3)) == [
        "panl.quynhnhai", "panlo.quynhnhai", "panl2.quynhnhai",
    ]
    # "Mùa A Sử": the middle name "A" spelled out is the R5.2 form again.
    assert list(itertools.islice(person_candidates("Mùa A Sử", "skhcn"), 3)) == [
        "suma.skhcn", "sumuaa.skhcn", "suma2.skhcn",
    ]
    assert list(itertools.islice(person_candidates("Sử", "skhcn"), 3)) == ["su.skhcn", "su2.skhcn", "su3.skhcn"]


def test_r5_3_long_spelled_variants_are_skipped():
    """R5.3: an address must stay short, so long spelled-out variants give way to numbers."""
    got = list(itertools.islice(person_candidates("Nguyễn Hoàng Phương Nguyệt", "skhcn"), 3))
    assert got == ["nguyetnhp.skhcn", "nguyetnguyenhp.skhcn", "nguyetnhp2.skhcn"]
    assert len("nguyetnhoangphuong") > MAX_SPELLED_VARIANT


@pytest.mark.parametrize(("name", "agency", "expected"), PEOPLE, ids=[p[0] for p in PEOPLE])
def test_r5_3_candidates_distinct_valid_and_contain_name_and_agency(name, agency, expected):
    """R5.3: distinct, valid, short, containing the person's given name and the agency."""
    given = transliterate(split_name(name)[2])
    got = list(itertools.islice(person_candidates(name, agency), 200))
    assert len(set(got)) == len(got) == 200
    for candidate in got:
        assert is_valid_local_part(candidate)
        local, _, agency_part = candidate.partition(".")
        assert agency_part == agency
        assert local.startswith(given)
        assert len(local) <= max(len(got[0].split(".")[0]) + 3, MAX_SPELLED_VARIANT)


def test_r5_3_candidates_are_deterministic():
    first = list(itertools.islice(person_candidates("Cầm Thị Ngọc", "muongla"), 50))
    again = list(itertools.islice(person_candidates(unicodedata.normalize("NFD", "CẦM THỊ NGỌC"), "muongla"), 50))
    assert first == again


def test_r5_3_candidates_never_run_out():
    """R5.3: however many namesakes, the next one always gets a free address."""
    taken: set[str] = set()
    for _ in range(1000):
        taken.add(first_free_person_local_part("Nguyễn Văn An", "skhcn", taken))
    assert len(taken) == 1000
    # three named forms, then annv2 ... annv998
    assert "annv998.skhcn" in taken and "annv999.skhcn" not in taken


def test_r5_3_namesakes_in_one_agency():
    """R5.3: three "Lò Văn Hặc" at one commune get three distinct addresses, in a fixed order."""
    taken: list[str] = []
    for _ in range(4):
        taken.append(first_free_person_local_part("Lò Văn Hặc", "chiengmung", taken))
    assert taken == ["haclv.chiengmung", "haclov.chiengmung", "haclvan.chiengmung", "haclv2.chiengmung"]


def test_r5_3_same_initials_different_names():
    """R5.3: "Ngô Văn An" after "Nguyễn Văn An" gets a memorable address with his family name."""
    taken = {person_local_part("Nguyễn Văn An", "skhcn")}
    assert first_free_person_local_part("Ngô Văn An", "skhcn", taken) == "anngov.skhcn"
    taken = {"annv.skhcn", "annguyenv.skhcn"}
    assert first_free_person_local_part("Nguyễn Việt An", "skhcn", taken) == "annviet.skhcn"


def test_r5_3_same_name_other_agency_is_no_clash():
    """R5.3 only concerns the same name at the same agency."""
    assert person_local_part("Nguyễn Văn An", "skhcn") != person_local_part("Nguyễn Văn An", "stc")
