#!/usr/bin/env python3
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a synthetic but realistic mail inventory of N people, the same one for the same seed.

    python bench/generate.py --people 50000 --seed 1 --out bench/out/50000

Writes ``OUT/mail/{policy.yml,organizations.yml,people/<agency>.yml,addresses.lock.yml}`` in the
format of docs/inventory.md (one people file per agency: a department, commune or ward, holding the
staff of its sub-units too, as the demo inventory does). The lock file is allocated by the
collection's own code, as ``scripts/lint-inventory --allocate`` would, so the inventory is lint-clean
the way a committed one is; ``--no-lock`` leaves it out.

What makes it realistic:

* about 600 organizations: provincial departments with abbreviations, 75 communes and 8 wards with
  Sơn La-style names (after the 2025 reorganisation), and 4-9 sub-units under each;
* family names with their real frequency among Vietnamese (Nguyễn ~38 %, Trần ~11 %, Lê ~9.5 %,
  Phạm ~7 %, Hoàng/Huỳnh ~5 %) and the Thái, H'Mông and Mường family names of Sơn La (Lò, Cầm,
  Quàng, Lường, Tòng, Mùa, Thào, Giàng, Sùng, Vàng, Đinh, Bạch, Hà, Vì, ...) for the rest;
* middle and given names from short, skewed lists, so the same R5.2 address base recurs inside
  one agency as it does in real staff lists (clashes, R5.3);
* a few per cent of personal quotas, suspended and absent entries, and notified absences.

Nothing here depends on the clock or on hash ordering: only ``random.Random(seed)``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import types
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Family names and their share of the whole staff (per cent). The first five follow the national
# frequencies; the long tail mixes the other Kinh names with the ethnic names of Sơn La.
FAMILY_NAMES = (
    ("Nguyễn", 38.0), ("Trần", 11.0), ("Lê", 9.5), ("Phạm", 7.0), ("Hoàng", 4.0), ("Huỳnh", 1.0),
    ("Phan", 1.5), ("Vũ", 1.5), ("Đặng", 1.0), ("Bùi", 1.0), ("Đỗ", 0.8), ("Ngô", 0.6), ("Hồ", 0.4),
    ("Dương", 0.5), ("Đào", 0.4), ("Đoàn", 0.3), ("Trịnh", 0.3), ("Lương", 0.3), ("Mai", 0.2),
    ("Cao", 0.2), ("Tạ", 0.1), ("Lưu", 0.1), ("Chu", 0.1), ("Quách", 0.1), ("Tô", 0.1),
    # Thái
    ("Lò", 4.0), ("Cầm", 2.5), ("Quàng", 2.0), ("Lường", 2.0), ("Tòng", 1.5), ("Lù", 0.8),
    ("Điêu", 0.6), ("Lừ", 0.6), ("Sầm", 0.3), ("Vì", 0.8), ("Hà", 1.2), ("Bạc", 0.4), ("Khà", 0.2),
    ("Mè", 0.2), ("Lý", 0.4),
    # H'Mông
    ("Mùa", 0.8), ("Thào", 0.8), ("Giàng", 0.8), ("Sùng", 0.7), ("Vàng", 0.7), ("Lầu", 0.3),
    ("Hờ", 0.2), ("Chá", 0.1),
    # Mường, Dao, Khơ Mú
    ("Đinh", 1.0), ("Bạch", 0.3), ("Xa", 0.2),
)

KINH_MIDDLE_MALE = (("Văn", 40), ("Đức", 8), ("Minh", 8), ("Quang", 6), ("Hữu", 5), ("Công", 4),
                    ("Xuân", 4), ("Thanh", 4), ("Ngọc", 3), ("Tiến", 3), ("Mạnh", 2), ("Trọng", 2),
                    ("Việt", 2), ("Đình", 3), ("Anh", 2), ("Quốc", 3), ("Duy", 2))
KINH_MIDDLE_FEMALE = (("Thị", 55), ("Thu", 5), ("Thanh", 5), ("Ngọc", 5), ("Minh", 4), ("Thúy", 3),
                      ("Hồng", 3), ("Kim", 3), ("Phương", 3), ("Bích", 2), ("Hải", 2), ("Diệu", 1),
                      ("Mai", 2), ("Khánh", 2))
KINH_GIVEN_MALE = (("Anh", 8), ("Hùng", 6), ("Dũng", 6), ("Tuấn", 6), ("Minh", 5), ("Hải", 5),
                   ("Nam", 5), ("Thắng", 4), ("Cường", 4), ("Long", 4), ("Hiếu", 4), ("Sơn", 4),
                   ("Trung", 4), ("Đức", 3), ("Huy", 4), ("Quân", 3), ("Tùng", 3), ("Thành", 4),
                   ("Bình", 3), ("Phong", 2), ("Khánh", 2), ("Việt", 2), ("Hoàng", 2), ("An", 3),
                   ("Lâm", 1), ("Toàn", 2), ("Vinh", 2), ("Quý", 1), ("Đạt", 2), ("Hưng", 2))
KINH_GIVEN_FEMALE = (("Hương", 7), ("Lan", 5), ("Linh", 6), ("Trang", 6), ("Hà", 5), ("Hằng", 5),
                     ("Huyền", 5), ("Mai", 5), ("Thảo", 5), ("Ngọc", 3), ("Phương", 4), ("Nhung", 3),
                     ("Yến", 3), ("Hoa", 4), ("Thủy", 4), ("Anh", 5), ("Dung", 3), ("Hạnh", 3),
                     ("Loan", 2), ("Nga", 3), ("Oanh", 2), ("Quyên", 1), ("Vân", 2), ("Giang", 2))
THAI_GIVEN_MALE = (("Pọm", 2), ("Xôm", 2), ("Ún", 1), ("Inh", 2), ("Thoại", 1), ("Piêng", 1),
                   ("Khoa", 2), ("Hặc", 1), ("Lả", 1), ("Tiến", 2), ("Quyết", 2), ("Hoan", 2),
                   ("Đôi", 1), ("Thương", 2), ("Chung", 2), ("Bun", 1))
THAI_GIVEN_FEMALE = (("Pâng", 1), ("Ín", 1), ("Ánh", 2), ("Xuân", 2), ("Ngoan", 2), ("Lả", 1),
                     ("Hoa", 2), ("Phượng", 2), ("Hiên", 2), ("Ươi", 1), ("Ên", 1), ("Xiêm", 1))
HMONG_GIVEN_MALE = (("Páo", 3), ("Chứ", 2), ("Dế", 2), ("Sình", 2), ("Tủa", 2), ("Lử", 1),
                    ("Của", 2), ("Chơ", 1), ("Dình", 1), ("Nênh", 1), ("Pó", 1), ("Thái", 1))
HMONG_GIVEN_FEMALE = (("Mỷ", 3), ("Dợ", 2), ("Mai", 2), ("Chá", 1), ("Xi", 1), ("Pa", 1), ("Mua", 1),
                      ("Sua", 1), ("Dua", 1))
THAI_FAMILIES = frozenset(("Lò", "Cầm", "Quàng", "Lường", "Tòng", "Lù", "Điêu", "Lừ", "Sầm", "Vì",
                           "Hà", "Bạc", "Khà", "Mè", "Xa"))
HMONG_FAMILIES = frozenset(("Mùa", "Thào", "Giàng", "Sùng", "Vàng", "Lầu", "Hờ", "Chá"))

DEPARTMENTS = (
    ("vpubnd", "Văn phòng Ủy ban nhân dân tỉnh"), ("vpdbqh", "Văn phòng Đoàn ĐBQH và HĐND tỉnh"),
    ("snv", "Sở Nội vụ"), ("stc", "Sở Tài chính"), ("skhcn", "Sở Khoa học và Công nghệ"),
    ("syt", "Sở Y tế"), ("sgddt", "Sở Giáo dục và Đào tạo"), ("snnmt", "Sở Nông nghiệp và Môi trường"),
    ("sxd", "Sở Xây dựng"), ("sct", "Sở Công Thương"), ("svhttdl", "Sở Văn hóa, Thể thao và Du lịch"),
    ("stp", "Sở Tư pháp"), ("sdttg", "Sở Dân tộc và Tôn giáo"), ("sngv", "Sở Ngoại vụ"),
    ("ttt", "Thanh tra tỉnh"), ("bqlkcn", "Ban Quản lý các khu công nghiệp tỉnh"),
    ("bqldadtxd", "Ban Quản lý dự án đầu tư xây dựng tỉnh"), ("dpt", "Đài Phát thanh và Truyền hình tỉnh"),
    ("bsl", "Báo Sơn La"), ("tcdsl", "Trường Cao đẳng Sơn La"), ("dtb", "Trường Đại học Tây Bắc"),
    ("bvdk", "Bệnh viện Đa khoa tỉnh"), ("cdc", "Trung tâm Kiểm soát bệnh tật tỉnh"),
    ("qtdnd", "Quỹ Đầu tư phát triển tỉnh"), ("ttxttm", "Trung tâm Xúc tiến đầu tư, Thương mại và Du lịch"),
    ("ttpvhcc", "Trung tâm Phục vụ hành chính công tỉnh"), ("bhxh", "Bảo hiểm xã hội tỉnh"),
    ("ctk", "Thống kê tỉnh"),
)
DEPARTMENT_SUBUNITS = (
    ("vp", "Văn phòng"), ("tt", "Thanh tra"), ("tccb", "Phòng Tổ chức cán bộ"),
    ("khtc", "Phòng Kế hoạch - Tài chính"), ("qlcl", "Phòng Quản lý chất lượng"),
    ("pc", "Phòng Pháp chế"), ("nv", "Phòng Nghiệp vụ"), ("cntt", "Trung tâm Công nghệ thông tin"),
    ("ttdv", "Trung tâm Dịch vụ"), ("qlnn", "Phòng Quản lý nhà nước"), ("dt", "Phòng Đào tạo"),
)
COMMUNE_SUBUNITS = (
    ("vp", "Văn phòng HĐND và UBND"), ("kt", "Phòng Kinh tế"), ("vhxh", "Phòng Văn hóa - Xã hội"),
    ("pvhcc", "Trung tâm Phục vụ hành chính công"), ("dvc", "Trung tâm Dịch vụ tổng hợp"),
)
WARDS = ("Tô Hiệu", "Chiềng An", "Chiềng Cơi", "Chiềng Sinh", "Mộc Châu", "Mộc Sơn", "Vân Sơn", "Thảo Nguyên")
REAL_COMMUNES = (
    "Chiềng Mung", "Mường La", "Mai Sơn", "Yên Châu", "Phù Yên", "Bắc Yên", "Quỳnh Nhai", "Thuận Châu",
    "Sông Mã", "Sốp Cộp", "Mường Chanh", "Chiềng Sung", "Mường Bú", "Ngọc Chiến", "Chiềng Lao",
    "Tạ Xùa", "Xím Vàng", "Pắc Ngà", "Chiềng Sại", "Tà Xùa", "Mường Bang", "Gia Phù", "Tường Hạ",
    "Mường Giôn", "Mường Sại", "Nậm Lầu", "Co Mạ", "Bó Sinh", "Mường Lầm", "Chiềng Khương",
    "Mường Hung", "Chiềng Sơ", "Púng Bánh", "Mường Lèo", "Lóng Sập", "Tân Yên", "Vân Hồ", "Xuân Nha",
    "Tô Múa", "Song Khủa", "Lóng Phiêng", "Chiềng Hặc", "Phiêng Khoài", "Chiềng Mai", "Nà Bó",
    "Phiêng Pằn", "Chiềng Nơi", "Mường Khiêng", "Bó Mười", "Chiềng La", "Nậm Ty", "Huổi Một",
)
COMMUNE_FIRST = ("Chiềng", "Mường", "Nậm", "Huổi", "Phiêng", "Pá", "Tà", "Co", "Bó", "Nà", "Long", "Púng")
COMMUNE_SECOND = ("Ban", "Bôm", "Đen", "Ly", "Khoang", "Tấu", "Lương", "Ve", "Xôm", "Lề", "Ngàm",
                  "Pằn", "Cang", "Hoa", "Ơn", "Pấc", "Dong", "Cuông", "Kheo", "Lạn", "Sơ", "Mùn")
N_COMMUNES = 75

PEOPLE_SHARE = {"department": 1.0, "commune": 0.25, "ward": 0.35}  # mean staff weight of an agency


def _weighted(rng: random.Random, table):
    names, weights = zip(*table, strict=True)
    return rng.choices(names, weights=weights)[0]


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in text if not unicodedata.combining(c)).lower().replace(" ", "").replace("'", "")


def organizations(rng: random.Random) -> list[dict]:
    """About 600 organizations: departments, communes, wards, each with its sub-units."""
    orgs: list[dict] = []
    for abbreviation, name in DEPARTMENTS:
        orgs.append({"id": abbreviation, "name": name, "kind": "department", "abbreviation": abbreviation})
    for name in WARDS:
        orgs.append({"id": _ascii(name), "name": f"Phường {name}", "kind": "ward"})
    taken = {org["id"] for org in orgs}
    names = iter(REAL_COMMUNES)
    while len(orgs) < len(DEPARTMENTS) + len(WARDS) + N_COMMUNES:
        name = next(names, None) or f"{rng.choice(COMMUNE_FIRST)} {rng.choice(COMMUNE_SECOND)}"
        if _ascii(name) not in taken:  # two communes may not share an address (R5.1b)
            taken.add(_ascii(name))
            orgs.append({"id": _ascii(name), "name": f"Xã {name}", "kind": "commune"})
    agencies = list(orgs)
    for agency in agencies:
        if agency["kind"] == "department":
            units = rng.sample(DEPARTMENT_SUBUNITS, rng.randint(5, 8))
        else:
            units = rng.sample(COMMUNE_SUBUNITS, 4)
        short = agency["name"].split(" ", 1)[1] if agency["kind"] != "department" else agency["name"]
        for abbreviation, name in sorted(units):
            orgs.append({"id": f"{abbreviation}-{agency['id']}", "name": f"{name} {short}", "kind": "subunit",
                         "parent": agency["id"], "abbreviation": abbreviation})
    # A handful of organization quotas, as the demo has for the busiest offices.
    for org in rng.sample(agencies, 6):
        org["quota_mb"] = rng.choice((5120, 10240))
    return orgs


def person_name(rng: random.Random) -> str:
    family = _weighted(rng, FAMILY_NAMES)
    female = rng.random() < 0.5
    if family in HMONG_FAMILIES:
        middle = ["Thị"] if female else ["A"]
        given = _weighted(rng, HMONG_GIVEN_FEMALE if female else HMONG_GIVEN_MALE)
    else:
        middle = [_weighted(rng, KINH_MIDDLE_FEMALE if female else KINH_MIDDLE_MALE)]
        if family in THAI_FAMILIES and rng.random() < 0.6:
            given = _weighted(rng, THAI_GIVEN_FEMALE if female else THAI_GIVEN_MALE)
        else:
            given = _weighted(rng, KINH_GIVEN_FEMALE if female else KINH_GIVEN_MALE)
        if rng.random() < 0.12:  # four-word names: Nguyễn Thị Minh Khai
            second = _weighted(rng, KINH_MIDDLE_FEMALE if female else KINH_MIDDLE_MALE)
            if second != middle[0]:
                middle.append(second)
        elif rng.random() < 0.02:  # no middle name
            middle = []
    return " ".join((family, *middle, given))


def people(rng: random.Random, orgs: list[dict], count: int) -> dict[str, list[dict]]:
    """``count`` people spread over the agencies, keyed by agency id (the people file name)."""
    agencies = [org for org in orgs if org["kind"] != "subunit"]
    units = {agency["id"]: [org["id"] for org in orgs if org.get("parent") == agency["id"]] for agency in agencies}
    weights = [PEOPLE_SHARE[agency["kind"]] * rng.lognormvariate(0, 0.6) for agency in agencies]
    by_agency: dict[str, list[dict]] = {agency["id"]: [] for agency in agencies}
    serial = {agency["id"]: 0 for agency in agencies}
    requests = {agency["id"]: [f"{rng.randint(10, 399)}/QĐ-{agency['id'].upper()}" for _ in range(3)] for agency in agencies}
    for agency in rng.choices(agencies, weights=weights, k=count):
        agency_id = agency["id"]
        serial[agency_id] += 1
        person = {
            "id": f"{agency_id}-{serial[agency_id]:05d}",
            "name": person_name(rng),
            "organization": rng.choice(units[agency_id]) if rng.random() < 0.6 else agency_id,
            "request": rng.choice(requests[agency_id]),
        }
        roll = rng.random()
        if roll < 0.03:
            person["quota_mb"] = rng.choice((4096, 8192))
        elif roll < 0.04:
            person["state"] = "suspended"
            person["reason"] = rng.choice(("Nghỉ việc chờ quyết định", "Chuyển công tác", "Kỷ luật tạm đình chỉ"))
        elif roll < 0.045:
            person["state"] = "absent"
        elif roll < 0.055:
            person["leave_until"] = f"2027-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        by_agency[agency_id].append(person)
    return by_agency


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_organizations(orgs: list[dict]) -> str:
    lines = ["---", "# Synthetic inventory written by bench/generate.py; do not edit.", "organizations:"]
    for org in orgs:
        lines.append(f"  - id: {org['id']}")
        lines.append(f"    name: {_quote(org['name'])}")
        lines.append(f"    kind: {org['kind']}")
        for key in ("parent", "abbreviation", "quota_mb"):
            if key in org:
                lines.append(f"    {key}: {org[key]}")
    return "\n".join(lines) + "\n"


def render_people(entries: list[dict]) -> str:
    lines = ["---", "# Synthetic staff list written by bench/generate.py; do not edit.", "people:"]
    for person in entries:
        lines.append(f"  - id: {person['id']}")
        lines.append(f"    name: {person['name']}")
        lines.append(f"    organization: {person['organization']}")
        lines.append(f"    request: {_quote(person['request'])}")
        for key in ("quota_mb", "state", "reason", "leave_until"):
            if key in person:
                value = person[key]
                lines.append(f"    {key}: {_quote(value) if key in ('reason', 'leave_until') else value}")
    if not entries:
        lines[-1] = "people: []"
    return "\n".join(lines) + "\n"


POLICY = """---
# Synthetic inventory written by bench/generate.py; do not edit.
domain: sonla.gov.vn
department: skhcn
policy:
  default_quota_mb: 2048
"""


def _import_collection() -> None:
    """Map ``ansible_collections.sonla.mail`` onto this checkout, as scripts/lint-inventory does."""
    try:  # already importable (pytest's conftest, an installed collection): leave it alone
        import ansible_collections.sonla.mail.plugins.module_utils._inventory  # noqa: F401
        return
    except ImportError:
        pass
    for name, path in (("ansible_collections", []), ("ansible_collections.sonla", []),
                       ("ansible_collections.sonla.mail", [ROOT])):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = path
            sys.modules[name] = package
    sys.modules["ansible_collections.sonla.mail"].__path__ = [ROOT]


def write_lock(mail: str) -> int:
    """Pin every address with the collection's allocator; returns the number of problems."""
    _import_collection()
    from ansible_collections.sonla.mail.plugins.module_utils._inventory import load_inventory, render_lock, resolve

    inventory = load_inventory(mail)
    if not inventory.problems:
        resolution = resolve(inventory)
        with open(inventory.lock_path, "w", encoding="utf-8") as stream:
            stream.write(render_lock(resolution.addresses))
    for problem in inventory.problems[:20]:
        print(problem, file=sys.stderr)
    return len(inventory.problems)


def generate(count: int, seed: int, out: str, lock: bool = True) -> str:
    """Write the inventory under ``out``; returns its ``mail/`` folder."""
    rng = random.Random(seed)
    orgs = organizations(rng)
    staff = people(rng, orgs, count)
    mail = os.path.join(out, "mail")
    os.makedirs(os.path.join(mail, "people"), exist_ok=True)
    for stale in os.listdir(os.path.join(mail, "people")):
        os.unlink(os.path.join(mail, "people", stale))
    for stale in ("addresses.lock.yml",):
        if os.path.exists(os.path.join(mail, stale)):
            os.unlink(os.path.join(mail, stale))
    with open(os.path.join(mail, "policy.yml"), "w", encoding="utf-8") as stream:
        stream.write(POLICY)
    with open(os.path.join(mail, "organizations.yml"), "w", encoding="utf-8") as stream:
        stream.write(render_organizations(orgs))
    for agency_id, entries in staff.items():
        with open(os.path.join(mail, "people", f"{agency_id}.yml"), "w", encoding="utf-8") as stream:
            stream.write(render_people(entries))
    if lock and write_lock(mail):
        raise SystemExit("generate: the generated inventory has problems (see above)")
    return mail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, required=True, help="number of people")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--out", required=True, help="output folder; the inventory goes to OUT/mail/")
    parser.add_argument("--no-lock", action="store_true", help="do not write addresses.lock.yml")
    args = parser.parse_args()
    mail = generate(args.people, args.seed, args.out, lock=not args.no_lock)
    print(mail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
