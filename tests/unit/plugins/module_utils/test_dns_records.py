# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DNS records of a managed domain, the DKIM key plan and the comparison with what a resolver serves."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.sonla.mail.plugins.module_utils._dns_records import (
    DnsRecordsError,
    Record,
    differences,
    dkim_keys,
    expected_records,
    mta_sts_id,
    mta_sts_policy,
    parse_answer,
    public_key_base64,
    queries,
    zone_snippet,
)

DOMAIN = "sonla.gov.vn"
KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 340 + "IDAQAB"  # longer than 255: split in the zone
POLICY = mta_sts_policy("testing", ["mail.sonla.gov.vn"], 604800)


def records(dkim=None, address="192.0.2.25"):
    dkim = dkim if dkim is not None else [{"selector": "s2026", "state": "active", "public_key": KEY}]
    return expected_records(DOMAIN, ["mail.sonla.gov.vn"], dkim, f"postmaster@{DOMAIN}", "reject", POLICY, address)


def served_as_expected(expected):
    return {(r.name, r.rtype): [r.value] for r in expected if r.present}


# --- DKIM key plan ------------------------------------------------------------------------------------------


def test_every_domain_gets_the_global_selectors_and_a_path_per_key():
    keys = dkim_keys(["a.gov.vn", "b.gov.vn"], [{"name": "s1", "state": "active"}, {"name": "s2"}], {}, "/var/lib/k/")
    assert [(k["domain"], k["selector"], k["state"]) for k in keys] == [
        ("a.gov.vn", "s1", "active"), ("a.gov.vn", "s2", "published"),
        ("b.gov.vn", "s1", "active"), ("b.gov.vn", "s2", "published")]
    assert keys[0]["path"] == "/var/lib/k/a.gov.vn.s1.key" and keys[0]["public_path"] == "/var/lib/k/a.gov.vn.s1.pub"


def test_a_domain_list_replaces_the_global_one():
    keys = dkim_keys(["a.gov.vn", "b.gov.vn"], [{"name": "s1", "state": "active"}],
                     {"b.gov.vn": [{"name": "b2027", "state": "active"}, {"name": "s1", "state": "retired"}]}, "/k")
    assert [(k["domain"], k["selector"], k["state"]) for k in keys] == [
        ("a.gov.vn", "s1", "active"), ("b.gov.vn", "b2027", "active"), ("b.gov.vn", "s1", "retired")]


@pytest.mark.parametrize(("selectors", "domain_selectors", "message"), [
    ([{"name": "s1"}], {}, "exactly one active selector"),
    ([{"name": "s1", "state": "active"}, {"name": "s2", "state": "active"}], {}, "exactly one active selector"),
    ([{"name": "S_1", "state": "active"}], {}, "not a DNS label"),
    ([{"name": "s1", "state": "on"}], {}, "state 'on' is not one of"),
    ([{"name": "s1", "state": "active"}, {"name": "s1"}], {}, "listed twice"),
    ([], {}, "a list of selectors is needed"),
    (["s1"], {}, "not a mapping with a name"),
    ([{"name": "s1", "state": "active"}], {"other.gov.vn": []}, "other.gov.vn is not a managed domain"),
    ([{"name": "s1", "state": "active"}], {"a.gov.vn": [{"name": "s2"}]}, r"filter_dkim_domain_selectors\[a.gov.vn\]"),
])
def test_bad_selector_lists_are_refused_naming_the_list_and_rule(selectors, domain_selectors, message):
    with pytest.raises(DnsRecordsError, match=message):
        dkim_keys(["a.gov.vn"], selectors, domain_selectors, "/k")


def test_public_key_body_is_read_from_pem():
    assert public_key_base64("-----BEGIN PUBLIC KEY-----\nAAAA\nBBBB\n-----END PUBLIC KEY-----\n") == "AAAABBBB"
    with pytest.raises(DnsRecordsError, match="not a PEM public key"):
        public_key_base64("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


# --- expected records and the snippet --------------------------------------------------------------------------


def test_the_domain_gets_every_record_the_issue_names():
    got = {(r.name, r.rtype): r.value for r in records()}
    assert got[(f"{DOMAIN}.", "MX")] == "10 mail.sonla.gov.vn."
    assert got[(f"{DOMAIN}.", "TXT")] == "v=spf1 mx -all"
    assert got[(f"s2026._domainkey.{DOMAIN}.", "TXT")] == f"v=DKIM1; k=rsa; p={KEY}"
    assert got[(f"_dmarc.{DOMAIN}.", "TXT")] == f"v=DMARC1; p=reject; rua=mailto:postmaster@{DOMAIN}"
    assert got[(f"_mta-sts.{DOMAIN}.", "TXT")] == f"v=STSv1; id={mta_sts_id(POLICY)}"
    assert got[(f"_smtp._tls.{DOMAIN}.", "TXT")] == f"v=TLSRPTv1; rua=mailto:postmaster@{DOMAIN}"
    assert got[(f"mail.{DOMAIN}.", "A")] == got[(f"mta-sts.{DOMAIN}.", "A")] == "192.0.2.25"


def test_without_an_address_there_are_no_a_records():
    assert not [r for r in records(address="") if r.rtype == "A"]


def test_the_mta_sts_id_follows_the_policy():
    policy = mta_sts_policy("enforce", ["mail.sonla.gov.vn"], 604800)
    assert policy == "version: STSv1\nmode: enforce\nmx: mail.sonla.gov.vn\nmax_age: 604800\n"
    assert mta_sts_id(policy) != mta_sts_id(POLICY)
    assert re.fullmatch(r"[0-9a-f]{20}", mta_sts_id(policy))  # RFC 8461: 1-32 letters and digits


@pytest.mark.parametrize(("args", "message"), [
    (("strict", ["mail.sonla.gov.vn"], 86400), "mode 'strict'"),
    (("testing", [], 86400), "host names are needed"),
    (("testing", ["mail.sonla.gov.vn"], 0), "max_age 0"),
])
def test_bad_mta_sts_settings_are_refused(args, message):
    with pytest.raises(DnsRecordsError, match=message):
        mta_sts_policy(*args)


def test_reports_go_to_an_address_in_the_domain_and_policy_is_known():
    with pytest.raises(DnsRecordsError, match="must be in sonla.gov.vn"):
        expected_records(DOMAIN, ["mail.sonla.gov.vn"], [], "dmarc@example.com", "reject", POLICY)
    with pytest.raises(DnsRecordsError, match="DMARC policy 'strict'"):
        expected_records(DOMAIN, ["mail.sonla.gov.vn"], [], f"postmaster@{DOMAIN}", "strict", POLICY)


def test_snippet_lines_are_zone_records_with_long_txt_split_and_the_ptr_reminder():
    expected = records(dkim=[{"selector": "s2026", "state": "active", "public_key": KEY},
                             {"selector": "s2025", "state": "retired"}])
    snippet = zone_snippet(DOMAIN, expected, 3600, "192.0.2.25", ["mail.sonla.gov.vn"])
    lines = [line for line in snippet.splitlines() if line and not line.startswith(";")]
    assert len(lines) == len([r for r in expected if r.present])
    dkim_line = next(line for line in lines if line.startswith("s2026._domainkey"))
    strings = re.findall(r'"([^"]*)"', dkim_line)
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings) and "".join(strings) == f"v=DKIM1; k=rsa; p={KEY}"
    assert "; REMOVE s2025._domainkey.sonla.gov.vn. TXT" in snippet
    assert "; PTR: 192.0.2.25 must map back to mail.sonla.gov.vn.\n" in snippet


# --- what a resolver serves ---------------------------------------------------------------------------------


DIG = """\
sonla.gov.vn.\t\t300\tIN\tTXT\t"v=spf1 mx -all"
sonla.gov.vn.\t\t300\tIN\tTXT\t"google-site-verification=abc"
s2026._domainkey.sonla.gov.vn. 300 IN\tTXT\t"v=DKIM1; k=rsa; p=AAAA" "BBBB"
mta-sts.sonla.gov.vn.\t300\tIN\tCNAME\tweb.sonla.gov.vn.
web.sonla.gov.vn.\t300\tIN\tA\t192.0.2.80
"""


def test_dig_answers_are_read_by_name_and_type_with_txt_strings_joined():
    assert parse_answer(DIG, "sonla.gov.vn.", "TXT") == ["v=spf1 mx -all", "google-site-verification=abc"]
    assert parse_answer(DIG, "s2026._domainkey.sonla.gov.vn.", "TXT") == ["v=DKIM1; k=rsa; p=AAAABBBB"]
    assert parse_answer(DIG, "mta-sts.sonla.gov.vn.", "A") == []  # a CNAME to another name is not the A asked for
    assert parse_answer('x.gov.vn. 1 IN TXT "a\\"b\\059c"', "x.gov.vn", "TXT") == ['a"b;c']


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=700))
def test_any_txt_value_written_in_the_snippet_reads_back_the_same(value):
    record = Record(f"{DOMAIN}.", "TXT", value, "v=spf1")
    line = next(line for line in zone_snippet(DOMAIN, [record], 300).splitlines() if line.startswith(DOMAIN))
    assert parse_answer(line, DOMAIN, "TXT") == [value]


def test_nothing_differs_when_every_record_is_served_and_others_are_ignored():
    expected = records()
    served = served_as_expected(expected)
    served[(f"{DOMAIN}.", "TXT")].append("google-site-verification=abc")  # another use of the name
    served[(f"_dmarc.{DOMAIN}.", "TXT")] = [f"v=DMARC1;rua=mailto:postmaster@{DOMAIN};  p=reject"]  # same tags
    assert differences(expected, served) == []
    assert (f"_smtp._tls.{DOMAIN}.", "TXT") in queries(expected)


def test_a_removed_record_is_reported_missing():
    expected = records()
    served = served_as_expected(expected)
    del served[(f"_dmarc.{DOMAIN}.", "TXT")]
    [difference] = differences(expected, served)
    assert (difference["problem"], difference["name"]) == ("missing", f"_dmarc.{DOMAIN}.")
    assert "is not served" in difference["message"]


def test_another_value_is_different_and_a_second_spf_record_is_extra():
    expected = records()
    served = served_as_expected(expected)
    served[(f"{DOMAIN}.", "TXT")] = ["v=spf1 a mx ~all", "v=spf1 include:example.com -all"]
    served[(f"{DOMAIN}.", "MX")] = ["10 mail.sonla.gov.vn.", "20 backup.example.com."]
    found = {(d["problem"], d["name"], d["type"], d["served"]) for d in differences(expected, served)}
    assert found == {("different", f"{DOMAIN}.", "TXT", "v=spf1 a mx ~all"),
                     ("extra", f"{DOMAIN}.", "TXT", "v=spf1 include:example.com -all"),
                     ("extra", f"{DOMAIN}.", "MX", "20 backup.example.com.")}


def test_a_retired_dkim_key_still_served_is_extra_and_a_published_one_missing():
    expected = records(dkim=[{"selector": "s2027", "state": "published", "public_key": "NEW"},
                             {"selector": "s2026", "state": "active", "public_key": KEY},
                             {"selector": "s2025", "state": "retired"}])
    served = served_as_expected(expected)
    del served[(f"s2027._domainkey.{DOMAIN}.", "TXT")]
    served[(f"s2025._domainkey.{DOMAIN}.", "TXT")] = ["v=DKIM1; k=rsa; p=OLD"]
    found = {(d["problem"], d["name"]): d["message"] for d in differences(expected, served)}
    assert set(found) == {("missing", f"s2027._domainkey.{DOMAIN}."), ("extra", f"s2025._domainkey.{DOMAIN}.")}
    assert "retired: remove it" in found[("extra", f"s2025._domainkey.{DOMAIN}.")]
