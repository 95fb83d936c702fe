# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DNS records a managed mail domain publishes, and how what a resolver serves differs from them.

Pure logic of the ``sonla.mail.dns_records`` module and the ``sonla.mail.dkim_keys`` filter (docs/dns.md):

* :func:`dkim_keys` plans the DKIM keys of every domain from the selector lists (one active selector signs;
  published ones stay in DNS; retired ones are taken out of DNS and off the server);
* :func:`expected_records` builds MX, SPF, DKIM, DMARC, MTA-STS and TLS-RPT records of one domain;
* :func:`zone_snippet` writes them as a zone-file snippet, with the PTR reminder;
* :func:`parse_answer` reads ``dig +noall +answer`` output; :func:`differences` compares.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

SELECTOR_STATES = ("active", "published", "retired")
DMARC_POLICIES = ("none", "quarantine", "reject")
MTA_STS_MODES = ("testing", "enforce", "none")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_TXT_CHUNK = 255  # RFC 1035: one character-string holds at most 255 octets


class DnsRecordsError(ValueError):
    """Bad input, naming the entry and the rule."""


def is_host_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(_LABEL.match(label) for label in labels)


# --- DKIM keys -------------------------------------------------------------------------------------


def dkim_keys(domains: list[str], selectors: list[dict], domain_selectors: dict | None, key_dir: str) -> list[dict]:
    """Every DKIM key of every domain: ``{domain, selector, state, path, public_path}``.

    A domain takes its list from ``domain_selectors`` or else the global ``selectors``. Each list names
    exactly one ``active`` selector (the one rspamd signs with); ``published`` selectors are kept in DNS
    and on the server (the next key before the switch, the previous one after it); ``retired`` ones are
    removed from both.
    """
    domain_selectors = domain_selectors or {}
    unknown = sorted(set(domain_selectors) - set(domains))
    if unknown:
        raise DnsRecordsError(f"filter_dkim_domain_selectors: {', '.join(unknown)} is not a managed domain")
    keys = []
    for domain in domains:
        where = f"filter_dkim_domain_selectors[{domain}]" if domain in domain_selectors else "filter_dkim_selectors"
        entries = domain_selectors.get(domain, selectors)
        if not isinstance(entries, list) or not entries:
            raise DnsRecordsError(f"{where}: a list of selectors is needed for {domain}")
        seen = set()
        for entry in entries:
            if not isinstance(entry, dict) or "name" not in entry:
                raise DnsRecordsError(f"{where}: {entry!r} is not a mapping with a name")
            name, state = str(entry["name"]), str(entry.get("state", "published"))
            if not _LABEL.match(name):
                raise DnsRecordsError(f"{where}: selector {name!r} is not a DNS label (lowercase letters, digits, -)")
            if state not in SELECTOR_STATES:
                raise DnsRecordsError(f"{where}: selector {name}: state {state!r} is not one of {', '.join(SELECTOR_STATES)}")
            if name in seen:
                raise DnsRecordsError(f"{where}: selector {name} is listed twice")
            seen.add(name)
            path = f"{key_dir.rstrip('/')}/{domain}.{name}.key"
            keys.append({"domain": domain, "selector": name, "state": state, "path": path,
                         "public_path": f"{path[:-len('.key')]}.pub"})
        active = [key["selector"] for key in keys if key["domain"] == domain and key["state"] == "active"]
        if len(active) != 1:
            raise DnsRecordsError(f"{where}: {domain} needs exactly one active selector (the one that signs), "
                                  f"not {len(active)}")
    return keys


def public_key_base64(pem: str) -> str:
    """The base64 body of a PEM public key (the ``p=`` of a DKIM record)."""
    lines = [line.strip() for line in pem.strip().splitlines()]
    if len(lines) < 3 or lines[0] != "-----BEGIN PUBLIC KEY-----" or lines[-1] != "-----END PUBLIC KEY-----":
        raise DnsRecordsError("not a PEM public key (BEGIN PUBLIC KEY ... END PUBLIC KEY)")
    return "".join(lines[1:-1])


# --- the expected records --------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One resource record. ``family`` tells which served records it is compared with (a TXT name can
    hold records of other uses); ``present`` is false for a record that must no longer be served."""

    name: str
    rtype: str
    value: str
    family: str
    present: bool = True
    why: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "type": self.rtype, "value": self.value, "present": self.present, "why": self.why}


def mta_sts_policy(mode: str, mx_hosts: list[str], max_age: int) -> str:
    """The policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 section 3.2)."""
    if mode not in MTA_STS_MODES:
        raise DnsRecordsError(f"MTA-STS mode {mode!r} is not one of {', '.join(MTA_STS_MODES)}")
    if not mx_hosts or not all(is_host_name(host.removeprefix("*.")) for host in mx_hosts):
        raise DnsRecordsError(f"MTA-STS mx {mx_hosts!r}: one or more host names are needed")
    if not 0 < int(max_age) <= 31557600:
        raise DnsRecordsError(f"MTA-STS max_age {max_age}: from 1 second to one year (31557600)")
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {host.rstrip('.')}" for host in mx_hosts),
             f"max_age: {int(max_age)}"]
    return "\n".join(lines) + "\n"


def mta_sts_id(policy: str) -> str:
    """The id of the _mta-sts TXT record: changes whenever the policy does, so senders fetch it again."""
    return hashlib.sha256(policy.encode()).hexdigest()[:20]


def expected_records(domain: str, mx_hosts: list[str], dkim: list[dict], report_address: str, dmarc_policy: str,
                     mta_sts: str, address: str = "") -> list[Record]:
    """The records of one domain. ``dkim`` holds ``{selector, state, public_key}`` (base64);
    ``mta_sts`` is the served policy text; ``address`` the server's IPv4 address (A records), or empty."""
    if not is_host_name(domain):
        raise DnsRecordsError(f"domain {domain!r} is not a DNS name")
    if dmarc_policy not in DMARC_POLICIES:
        raise DnsRecordsError(f"DMARC policy {dmarc_policy!r} is not one of {', '.join(DMARC_POLICIES)}")
    if not report_address.endswith("@" + domain):
        # Reports to another domain need that domain's authorization record (RFC 7489 section 7.1).
        raise DnsRecordsError(f"report address {report_address!r} must be in {domain}")
    apex = domain + "."
    records = [Record(apex, "MX", f"{10 * (index + 1)} {host.rstrip('.')}.", "MX", why="mail for the domain")
               for index, host in enumerate(mx_hosts)]
    if address:
        records += [Record(f"{host.rstrip('.')}.", "A", address, "A", why="the mail server")
                    for host in mx_hosts if host.rstrip(".").endswith("." + domain)]
        records.append(Record(f"mta-sts.{apex}", "A", address, "A", why="serves the MTA-STS policy"))
    records.append(Record(apex, "TXT", "v=spf1 mx -all", "v=spf1", why="SPF: only the MX hosts send"))
    for key in dkim:
        state = key["state"]
        value = f"v=DKIM1; k=rsa; p={key.get('public_key', '')}" if state != "retired" else ""
        records.append(Record(f"{key['selector']}._domainkey.{apex}", "TXT", value, "v=DKIM1", present=state != "retired",
                              why=f"DKIM selector {key['selector']} ({state})"))
    records.append(Record(f"_dmarc.{apex}", "TXT", f"v=DMARC1; p={dmarc_policy}; rua=mailto:{report_address}",
                          "v=DMARC1", why="DMARC, aggregate reports to the operators"))
    records.append(Record(f"_mta-sts.{apex}", "TXT", f"v=STSv1; id={mta_sts_id(mta_sts)}", "v=STSv1",
                          why="MTA-STS: the policy at https://mta-sts." + domain + "/.well-known/mta-sts.txt"))
    records.append(Record(f"_smtp._tls.{apex}", "TXT", f"v=TLSRPTv1; rua=mailto:{report_address}", "v=TLSRPTv1",
                          why="TLS-RPT: TLS failure reports to the operators"))
    return records


def _txt_rdata(value: str) -> str:
    """Character-strings of at most 255 octets each, split before escaping so no escape is cut in two."""
    chunks = [value[i:i + _TXT_CHUNK] for i in range(0, len(value), _TXT_CHUNK)] or [""]
    return " ".join('"' + chunk.replace("\\", "\\\\").replace('"', '\\"') + '"' for chunk in chunks)


def zone_snippet(domain: str, records: list[Record], ttl: int, address: str = "", mx_hosts: list[str] | None = None) -> str:
    """The records as zone-file lines (absolute names, TTL and class on every line)."""
    lines = [f"; DNS records of {domain} for the Son La mail system (sonla.mail playbooks/dns-records.yml).",
             f"; Publish every record below in the zone of {domain}; docs/dns.md explains each one.", ""]
    for record in records:
        if not record.present:
            lines.append(f"; REMOVE {record.name} {record.rtype}: {record.why}, no longer used")
            continue
        rdata = _txt_rdata(record.value) if record.rtype == "TXT" else record.value
        lines += [f"; {record.why}", f"{record.name} {ttl} IN {record.rtype} {rdata}"]
    hosts = ", ".join(f"{host.rstrip('.')}." for host in mx_hosts or [])
    lines += ["", f"; PTR: {address or 'the mail server address'} must map back to {hosts or 'the MX host'}",
              "; (reverse DNS lives in the zone of the address block, not this one: its owner, the network",
              "; provider, sets it)"]
    return "\n".join(lines) + "\n"


# --- what a resolver serves ------------------------------------------------------------------------


_TXT_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\(\d{3}|.)")


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1))) if m.group(1).isdigit() else m.group(1), text)


def parse_answer(output: str, name: str, rtype: str) -> list[str]:
    """The values of ``rtype`` records of ``name`` in ``dig +noall +answer`` output (CNAMEs followed by dig
    are skipped; TXT strings are joined into one value, as receivers read them)."""
    values = []
    for line in output.splitlines():
        fields = line.split(None, 4)
        if len(fields) < 5 or line.startswith(";") or fields[3].upper() != rtype:
            continue
        if fields[0].lower().rstrip(".") != name.lower().rstrip("."):
            continue
        rdata = fields[4].strip()
        if rtype == "TXT":
            rdata = "".join(_unescape(part) for part in _TXT_STRING.findall(rdata))
        values.append(rdata)
    return values


def _normalized(family: str, value: str) -> str:
    """A served value as compared: MX and names in lowercase; tag lists (DKIM, DMARC, MTA-STS, TLS-RPT) with
    the version tag first and the others in order, without blanks; SPF with single blanks."""
    if family in ("MX", "A"):
        return " ".join(value.lower().split())
    if family == "v=spf1":
        return " ".join(value.split()).lower()
    tags = [re.sub(r"\s+", "", tag) for tag in value.split(";") if tag.strip()]
    return ";".join(tags[:1] + sorted(tags[1:]))


def _in_family(family: str, value: str) -> bool:
    if family in ("MX", "A"):
        return True
    return re.sub(r"\s+", "", value).lower().startswith(family.lower().replace(" ", ""))


def queries(records: list[Record]) -> list[tuple[str, str]]:
    """The (name, type) pairs to ask the resolver, once each."""
    return sorted({(record.name, record.rtype) for record in records})


def differences(records: list[Record], served: dict[tuple[str, str], list[str]]) -> list[dict]:
    """Every way the served records differ from ``records``: ``missing`` (not served), ``different``
    (served with another value), ``extra`` (served but not expected: a second SPF record, a retired DKIM
    key, an unknown MX host)."""
    groups: dict[tuple[str, str, str], list[Record]] = {}
    for record in records:
        groups.setdefault((record.name, record.rtype, record.family), []).append(record)
    found = []
    for (name, rtype, family), group in sorted(groups.items()):
        wanted = {_normalized(family, r.value): r for r in group if r.present}
        got = {_normalized(family, value): value for value in served.get((name, rtype), []) if _in_family(family, value)}
        missing = [wanted[key] for key in wanted if key not in got]
        extra = [got[key] for key in got if key not in wanted]
        retired = [r for r in group if not r.present]
        if len(missing) == 1 and extra:
            record, value = missing.pop(), extra.pop(0)
            found.append(_difference("different", record, value,
                                     f"{name} {rtype} is {value!r}, expected {record.value!r} ({record.why})"))
        for record in missing:
            found.append(_difference("missing", record, "", f"{name} {rtype} {record.value!r} is not served ({record.why})"))
        for value in extra:
            why = retired[0].why + " is retired: remove it" if retired else "not expected: remove it"
            found.append(_difference("extra", Record(name, rtype, "", family), value,
                                     f"{name} {rtype} {value!r} is served, {why}"))
    return found


def _difference(kind: str, record: Record, served: str, message: str) -> dict:
    return {"problem": kind, "name": record.name, "type": record.rtype, "expected": record.value, "served": served,
            "message": message}
