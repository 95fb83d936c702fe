# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DKIM keys of the managed domains, planned from the selector lists (docs/dns.md):

    {{ filter_domains | sonla.mail.dkim_keys(filter_dkim_selectors, filter_dkim_domain_selectors, filter_dkim_key_dir) }}

gives ``[{domain, selector, state, path, public_path}]``, or stops with an error naming the list and the rule
(exactly one active selector per domain, selectors are DNS labels, states active, published or retired).
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.sonla.mail.plugins.module_utils import _dns_records


def dkim_keys(domains, selectors, domain_selectors, key_dir) -> list[dict]:
    try:
        return _dns_records.dkim_keys(list(domains), list(selectors or []), dict(domain_selectors or {}), str(key_dir))
    except _dns_records.DnsRecordsError as error:
        raise AnsibleFilterError(f"dkim_keys: {error}") from error


def mta_sts_policy(mode, mx_hosts, max_age) -> str:
    """The MTA-STS policy text (the role serves it; its hash is the id of the _mta-sts record)."""
    try:
        return _dns_records.mta_sts_policy(str(mode), list(mx_hosts), int(max_age))
    except _dns_records.DnsRecordsError as error:
        raise AnsibleFilterError(f"mta_sts_policy: {error}") from error


class FilterModule:
    def filters(self):
        return {"dkim_keys": dkim_keys, "mta_sts_policy": mta_sts_policy}
