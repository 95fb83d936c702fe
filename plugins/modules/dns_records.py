#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dns_records
short_description: The DNS records each managed mail domain publishes, and what a resolver serves instead
description:
  - Builds, for every managed domain, the records to publish (docs/dns.md) - MX, SPF C(-all), the DKIM TXT
    of every published selector (the public key read on the server), DMARC with reports to an address in
    the domain, the MTA-STS TXT whose id follows the served policy, TLS-RPT, and the A records of the mail
    host and of C(mta-sts.<domain>) when O(address) is given - and returns them as a zone-file snippet per
    domain with a reminder for PTR.
  - With O(resolver), asks that resolver with C(dig) (Debian's bind9-dnsutils) for every name and reports
    each difference - missing, different or extra (a second SPF record, a retired DKIM key still served).
  - Reads only; never changes anything. Runs on the mail server, which holds the DKIM public keys.
version_added: 0.2.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.NO_DIFF
options:
  domains:
    description: The managed mail domains.
    type: list
    elements: str
    required: true
  mx_hosts:
    description: The mail hosts of every domain, most preferred first (MX 10, 20, ...).
    type: list
    elements: str
    required: true
  dkim:
    description:
      - The DKIM keys as the C(sonla.mail.dkim_keys) filter plans them (the filter role's C(filter_dkim_keys)), each
        with C(domain), C(selector), C(state) (C(active) signs, C(published) is only published, C(retired) must
        no longer be served) and C(public_path), the PEM public key file on the server (read unless retired).
      - Other keys (the private key's C(path)) are ignored; the private key is never read.
    type: list
    elements: dict
    required: true
  report_local_part:
    description: Local part of the address in each domain that receives DMARC and TLS-RPT reports.
    type: str
    default: postmaster
  dmarc_policy:
    description: What the DMARC record asks receivers to do with mail that fails DKIM and SPF.
    type: str
    choices: [none, quarantine, reject]
    default: reject
  mta_sts_policy:
    description: The MTA-STS policy text served at C(https://mta-sts.<domain>/.well-known/mta-sts.txt).
    type: str
    required: true
  address:
    description: The mail server's public IPv4 address (A records and the PTR reminder); empty leaves them out.
    type: str
    default: ""
  ttl:
    description: TTL of the records, in seconds.
    type: int
    default: 3600
  resolver:
    description: Address of the resolver to check against (e.g. the province's DNS server); empty, no check.
    type: str
    default: ""
seealso:
  - module: sonla.mail.mail_inventory
"""

EXAMPLES = r"""
- name: The records to publish, checked against the province's resolver
  sonla.mail.dns_records:
    domains: [sonla.gov.vn]
    mx_hosts: [mail.sonla.gov.vn]
    dkim: "{{ filter_dkim_keys }}"
    mta_sts_policy: "{{ mta_sts_policy }}"
    address: 192.0.2.25
    resolver: 192.0.2.53
  register: dns
"""

RETURN = r"""
records:
  description: Every expected record, per domain; C(present) is false for one that must be removed.
  returned: always
  type: dict
  sample: {sonla.gov.vn: [{name: sonla.gov.vn., type: TXT, value: "v=spf1 mx -all", present: true, why: "SPF"}]}
snippets:
  description: The zone-file snippet of each domain.
  returned: always
  type: dict
  sample: {sonla.gov.vn: "sonla.gov.vn. 3600 IN MX 10 mail.sonla.gov.vn.\n..."}
differences:
  description: What the resolver serves differently (problem is missing, different or extra); empty without O(resolver).
  returned: always
  type: list
  elements: dict
  sample: [{problem: missing, name: _dmarc.sonla.gov.vn., type: TXT, expected: "v=DMARC1; ...", served: "",
            message: "_dmarc.sonla.gov.vn. TXT ... is not served"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils import _dns_records


def served_records(module, dig, resolver, records):
    """What the resolver answers for every name and type the records use."""
    served = {}
    for name, rtype in _dns_records.queries(records):
        argv = [dig, f"@{resolver}", "+noall", "+answer", "+tries=2", "+time=3", name, rtype]
        rc, out, err = module.run_command(argv)
        if rc != 0:
            module.fail_json(msg=f"the resolver {resolver} did not answer for {name} {rtype}: {(err or out).strip()}")
        served[(name, rtype)] = _dns_records.parse_answer(out, name, rtype)
    return served


def read_public_key(module, key):
    missing = [name for name in ("domain", "selector", "state", "public_path") if name not in key]
    if missing or key["state"] not in _dns_records.SELECTOR_STATES:
        module.fail_json(msg=f"dkim entry {key!r}: needs domain, selector, public_path and a state of "
                             f"{', '.join(_dns_records.SELECTOR_STATES)}")
    if key["state"] == "retired":
        return ""
    try:
        with open(key["public_path"], encoding="ascii") as handle:
            return _dns_records.public_key_base64(handle.read())
    except (OSError, _dns_records.DnsRecordsError) as error:
        module.fail_json(msg=f"DKIM key {key['selector']} of {key['domain']}: {key['public_path']}: {error} "
                             "(converge playbooks/site.yml first: the filter role makes the keys)")


def main():
    module = AnsibleModule(
        argument_spec={
            "domains": {"type": "list", "elements": "str", "required": True},
            "mx_hosts": {"type": "list", "elements": "str", "required": True},
            "dkim": {"type": "list", "elements": "dict", "required": True},
            "report_local_part": {"type": "str", "default": "postmaster"},
            "dmarc_policy": {"type": "str", "default": "reject", "choices": list(_dns_records.DMARC_POLICIES)},
            "mta_sts_policy": {"type": "str", "required": True},
            "address": {"type": "str", "default": ""},
            "ttl": {"type": "int", "default": 3600},
            "resolver": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    params = module.params
    records, snippets = {}, {}
    try:
        for domain in params["domains"]:
            keys = [dict(key, public_key=read_public_key(module, key)) for key in params["dkim"] if key.get("domain") == domain]
            records[domain] = _dns_records.expected_records(
                domain, params["mx_hosts"], keys, f"{params['report_local_part']}@{domain}", params["dmarc_policy"],
                params["mta_sts_policy"], params["address"])
            snippets[domain] = _dns_records.zone_snippet(domain, records[domain], params["ttl"], params["address"],
                                                         params["mx_hosts"])
    except _dns_records.DnsRecordsError as error:
        module.fail_json(msg=str(error))
    differences = []
    if params["resolver"]:
        dig = module.get_bin_path("dig", required=True)
        every = [record for domain_records in records.values() for record in domain_records]
        differences = _dns_records.differences(every, served_records(module, dig, params["resolver"], every))
    module.exit_json(changed=False, differences=differences, snippets=snippets,
                     records={domain: [r.as_dict() for r in rs] for domain, rs in records.items()})


if __name__ == "__main__":
    main()
