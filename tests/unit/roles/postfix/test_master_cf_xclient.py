# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""master.cf's XCLIENT (R9.1, docs/logs.md): only the submission ports obey it, and only from the webmail."""

from __future__ import annotations

import os

import jinja2
from ansible.plugins.filter.core import FilterModule as CoreFilters

TEMPLATES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "postfix", "templates")


def services(**variables) -> dict[str, list[str]]:
    """The rendered master.cf as {service: its -o options}."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES))
    environment.filters.update(CoreFilters().filters())
    text = environment.get_template("master.cf.j2").render(
        ansible_managed="managed", postfix_submission_policy_service={}, **variables)
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            current = line.split()[0]
            found[current] = []
        elif line.strip().startswith("-o") and current:
            found[current].append(line.strip()[3:])
    return found


def test_the_submission_ports_obey_xclient_from_the_webmail_only():
    rendered = services(postfix_xclient_hosts=["127.0.0.1", "::1"])
    for service in ("submission", "submissions"):
        assert "smtpd_authorized_xclient_hosts=127.0.0.1,::1" in rendered[service]
        assert "smtpd_sasl_auth_enable=yes" in rendered[service]  # the user still logs in
    assert not any("xclient" in option for option in rendered["smtp"])  # port 25: never


def test_no_xclient_hosts_means_no_xclient():
    rendered = services(postfix_xclient_hosts=[])
    assert not any("xclient" in option for options in rendered.values() for option in options)
