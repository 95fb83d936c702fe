# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""site.yml's check of a webmail host of several hosts (issue 15, docs/webmail.md "Several hosts").

A webmail host needs its two PostgreSQL databases; unless it is also the proxy it names one for IMAP and ManageSieve,
unless it is also the MX one for SMTP: a setting left on loopback would reach nothing on a host of its own. One
ansible-playbook run on the controller runs the play's check as written, with the play's own variables, for hosts
placed in the inventory's groups as an operator would.
"""

from __future__ import annotations

import pytest
from _site_play import run_tasks, servers_play

CA = "/etc/ssl/sonla-mail/db-ca.crt"
DATABASES = {"webmail_userdb_postgres": {"host": "db", "dbname": "sonla_mail", "user": "sonla_webmail", "password": "x",
                                         "ca_file": CA},
             "webmail_roundcube_postgres": {"host": "db", "dbname": "sonla_roundcube", "user": "sonla_roundcube",
                                            "password": "y", "ca_file": CA}}
WITHOUT_CA_FILE = {name: {key: value for key, value in account.items() if key != "ca_file"}
                   for name, account in DATABASES.items()}
REMOTE = {"webmail_imap_uri": "ssl://proxy.sonla.internal:993", "webmail_managesieve_host": "tls://proxy.sonla.internal",
          "webmail_smtp_uri": "ssl://mx.sonla.internal:465"}
# host: (its groups besides mail_servers, its variables, whether the check passes)
HOSTS = {
    "front": (["mx", "proxy", "webmail"], DATABASES, True),  # Roundcube's loopback defaults reach its own daemons
    "own": (["webmail"], {**DATABASES, **REMOTE}, True),
    "own_store": (["mailstore", "webmail"], {**DATABASES, **REMOTE}, True),
    "own_on_mx": (["mx", "webmail"], {**DATABASES, **{k: v for k, v in REMOTE.items() if k != "webmail_smtp_uri"}}, True),
    "own_defaults": (["webmail"], DATABASES, False),  # IMAP, SMTP and ManageSieve left on 127.0.0.1
    "own_loopback_imap": (["webmail"], {**DATABASES, **REMOTE, "webmail_imap_uri": "ssl://127.0.0.1:993"}, False),
    "own_localhost_sieve": (["webmail"], {**DATABASES, **REMOTE, "webmail_managesieve_host": "tls://localhost"}, False),
    "own_on_proxy_smtp_v6": (["proxy", "webmail"], {**DATABASES, **REMOTE, "webmail_smtp_uri": "ssl://[::1]:465"}, False),
    "no_databases": (["mx", "proxy", "webmail"], {}, False),
    # R10.2b: without the CA that signed the db host's certificate, no session could check it.
    "no_ca_file": (["mx", "proxy", "webmail"], WITHOUT_CA_FILE, False),
    "store": (["mailstore"], {}, True),  # not a webmail host: nothing to check
    "single": ([], {}, True),  # one host: every default holds
}
CHECK = "Check that a webmail host of several hosts has its databases and reaches the proxy and the MX (issue 15)"


@pytest.fixture(scope="module")
def outcome(tmp_path_factory) -> dict[str, dict]:
    play = servers_play()
    check = next(task for task in play["pre_tasks"] if task["name"] == CHECK)
    variables = {name: play["vars"][name] for name in ("__sonla_tiers", "__sonla_single", "__sonla_loopback")}
    hosts = {name: (groups, settings) for name, (groups, settings, _passes) in HOSTS.items()}
    tasks = run_tasks(tmp_path_factory.mktemp("site"), variables, [check], hosts)
    return {host: result for task in tasks for host, result in task["hosts"].items()}


@pytest.mark.parametrize("name", HOSTS)
def test_a_webmail_host_passes_only_when_it_reaches_the_proxy_and_the_mx(outcome, name):
    _groups, _settings, passes = HOSTS[name]
    result = outcome[name]
    assert bool(result.get("failed")) is not passes, result
    if not passes:
        assert "webmail_imap_uri" in result["msg"] and "postfix_xclient_hosts" in result["msg"], result["msg"]
