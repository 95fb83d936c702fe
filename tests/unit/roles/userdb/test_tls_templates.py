# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The several hosts' user database takes the tiers over TLS only (R10.2b, issue 15, docs/architecture.md).

The role's real templates are rendered with Ansible's core filters and the collection's TLS filter.
"""

from __future__ import annotations

import os

import jinja2
from ansible.plugins.filter.core import FilterModule as CoreFilters

from ansible_collections.sonla.mail.plugins.filter.tls import tls_profile
from ansible_collections.sonla.mail.plugins.module_utils import _tls

TEMPLATES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "userdb", "templates")
CLIENTS = [{"tier": "mx", "address": "10.1.0.0/24"}, {"tier": "mailstore", "address": "10.1.1.0/24"},
           {"tier": "webmail", "address": "10.1.2.0/24"}]


def render(name: str, **variables) -> str:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES))
    environment.filters.update(CoreFilters().filters())
    environment.filters["sonla.mail.tls_profile"] = tls_profile
    return environment.get_template(name).render(ansible_managed="managed", **variables)


def hba_lines(**variables) -> list[list[str]]:
    text = render("pg_hba.conf.j2", userdb_database="sonla_mail", userdb_roundcube_database="sonla_roundcube",
                  __userdb_owner="sonla_mail_owner", __userdb_login_prefix="sonla_", **variables)
    return [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_every_tier_from_the_network_is_taken_over_tls_only():
    lines = hba_lines(userdb_clients=CLIENTS, userdb_roundcube_password="x",
                      __userdb_logins={"mx": "a", "mailstore": "b", "webmail": "c", "roundcube": "x"})
    remote = [line for line in lines if line[0].startswith("host") and line[3] != "127.0.0.1/32"]
    assert {(line[2], line[3]) for line in remote} == {
        ("sonla_mx", "10.1.0.0/24"), ("sonla_mailstore", "10.1.1.0/24"), ("sonla_webmail", "10.1.2.0/24"),
        ("sonla_roundcube", "10.1.2.0/24")}
    assert all(line[0] == "hostssl" and line[4] == "scram-sha-256" for line in remote), remote
    # The role's own password check, on this host's loopback only, is the one plain TCP line per login role.
    loopback = [line for line in lines if line[0] == "host"]
    assert loopback and all(line[3] == "127.0.0.1/32" for line in loopback), loopback


def test_the_server_speaks_the_profile_with_postgresqls_copies_of_the_files():
    files = [{"dest": "/etc/postgresql/17/main/sonla-mail.crt"}, {"dest": "/etc/postgresql/17/main/sonla-mail.key"}]
    text = render("sonla-mail.conf.j2", userdb_listen_addresses=["*"], __userdb_version={"stdout": "17"},
                  __userdb_tls_files=files, __userdb_tls_dh_file="/etc/postgresql/17/main/ffdhe2048.pem")
    settings = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line and not line.startswith("#"))
    assert settings["ssl"] == "on"
    assert settings["ssl_cert_file"] == "'/etc/postgresql/17/main/sonla-mail.crt'"
    assert settings["ssl_key_file"] == "'/etc/postgresql/17/main/sonla-mail.key'"
    for line in _tls.lines("postgresql", "17", "/etc/postgresql/17/main/ffdhe2048.pem"):
        assert line in text.splitlines()
