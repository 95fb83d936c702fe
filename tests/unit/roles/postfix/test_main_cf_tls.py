# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""main.cf's TLS lines (R10.2b, docs/tls.md): the one profile, and outbound DANE only with named resolvers.

The real template is rendered with Ansible's core filters and the collection's TLS filter; variables the TLS
lines do not read are left undefined (empty), so other sections may change without touching this test.
"""

from __future__ import annotations

import os

import jinja2
import pytest
from ansible.plugins.filter.core import FilterModule as CoreFilters

from ansible_collections.sonla.mail.plugins.filter.tls import tls_profile
from ansible_collections.sonla.mail.plugins.module_utils import _tls

TEMPLATES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "postfix", "templates")


def main_cf(**variables) -> dict[str, str]:
    """The rendered main.cf as {parameter: value}; a parameter set twice fails the test (Postfix keeps the last)."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES))
    environment.filters.update(CoreFilters().filters())
    environment.filters["sonla.mail.tls_profile"] = tls_profile
    text = environment.get_template("main.cf.j2").render(
        ansible_managed="managed", __postfix_version="3.10.5", __postfix_tls_dh_file="/etc/postfix/dh.pem",
        postfix_mynetworks=[], postfix_milters=[],
        postfix_virtual_alias_maps=[], **variables)
    parameters: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#") and " = " in line:
            name, value = line.split(" = ", 1)
            assert name not in parameters, f"{name} set twice"
            parameters[name] = value
    return parameters


def test_the_server_side_is_the_profile():
    parameters = main_cf(postfix_dnssec_resolvers=[])
    for name, value in _tls.settings("postfix", "3.10.5", "/etc/postfix/dh.pem").items():
        assert parameters[name] == value
    assert parameters["smtpd_tls_auth_only"] == "yes"


def test_outbound_is_opportunistic_without_a_validating_resolver():
    parameters = main_cf(postfix_dnssec_resolvers=[])
    assert parameters["smtp_tls_security_level"] == "may"
    assert "smtp_dns_support_level" not in parameters


@pytest.mark.parametrize("resolvers", [["127.0.0.1"], ["10.0.0.53", "10.0.1.53"]])
def test_outbound_is_dane_with_named_validating_resolvers(resolvers):
    parameters = main_cf(postfix_dnssec_resolvers=resolvers)
    assert parameters["smtp_tls_security_level"] == "dane"
    assert parameters["smtp_dns_support_level"] == "dnssec"  # DANE needs the resolver's validated answers
