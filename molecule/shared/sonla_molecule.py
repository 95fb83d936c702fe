# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pytest plugin of every molecule scenario's tests: the container under test and how to reach it.

Each scenario's verify.yml loads it with ``-p sonla_molecule`` and this folder on PYTHONPATH.
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import subprocess
import sys
import time

import pytest
import testinfra


def pytest_addoption(parser):
    parser.addoption("--container", required=True, help="name of the podman container under test")


@pytest.fixture(scope="session")
def container(request) -> str:
    return request.config.getoption("--container")


@pytest.fixture(scope="session")
def host(container):
    return testinfra.get_host(f"podman://{container}")


@pytest.fixture(scope="session")
def server_ip(container) -> str:
    """The container's address: the tests connect from the host, outside the server's mynetworks."""
    return container_ip(container)


def container_ip(container: str) -> str:
    """The address of a container of the scenario (the server under test, or a peer such as an old server)."""
    return _network_setting(container, "IPAddress")


def host_ip(container: str) -> str:
    """The host's address on the container's network: where the tests' own connections (a browser's) come from."""
    return _network_setting(container, "Gateway")


def _network_setting(container: str, name: str) -> str:
    out = subprocess.run(["podman", "inspect", "--format", "{{json .NetworkSettings}}", container],
                         check=True, capture_output=True, text=True).stdout
    settings = json.loads(out)
    value = settings.get(name) or next(
        (net[name] for net in (settings.get("Networks") or {}).values() if net.get(name)), "")
    assert value and value != "127.0.0.1", f"no {name} for {container}: {out}"
    return value


def postfix_trail(host, needle: str) -> str:
    """Postfix's queue and its last mail log lines naming ``needle``: what a timed-out wait for a mail prints."""
    log = host.run("grep -F %s /var/log/postfix/mail.log | tail -n 20", needle).stdout
    return f"queue:\n{host.run('postqueue -p').stdout}\nmail log:\n{log}"


def wait_for(predicate, what: str, timeout: float = 30, interval: float = 0.5):
    """The first true result of ``predicate()``, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def tls_context() -> ssl.SSLContext:
    """A client context that accepts the scenarios' self-signed certificates (connected by IP)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def submission(ip: str, port: int, timeout: float = 30) -> smtplib.SMTP:
    """A staff client's connection to a submission port, TLS up and not yet logged in: 587 with STARTTLS,
    465 with TLS from the first byte (RFC 8314)."""
    if port == 465:
        return smtplib.SMTP_SSL(ip, port, context=tls_context(), timeout=timeout)
    smtp = smtplib.SMTP(ip, port, timeout=timeout)
    smtp.starttls(context=tls_context())
    return smtp


def write_test_inventory(folder, container: str, scenario: str, **server_vars) -> str:
    """An inventory for the ansible-playbook runs a scenario's tests make themselves, with the hosts and the
    variables of the scenarios' molecule.yml (the filter off, as there) plus ``server_vars``; returns its path."""
    inventory = {
        "all": {
            "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                    "sonla_mail_inventory_path": f"{scenario}/inventory-mail"}},
            "children": {"mail_servers": {
                "hosts": {container: {"ansible_connection": "containers.podman.podman"}},
                "vars": {"ansible_python_interpreter": "/usr/bin/python3", "postfix_tls_selfsigned": True,
                         "dovecot_tls_selfsigned": True, "webmail_tls_selfsigned": True,
                         "mailboxes_handoff_dir": str(folder / "handoff"), **server_vars,
                         "sonla_mail_filter_enabled": False},
            }},
        },
    }
    path = folder / "hosts.yml"
    path.write_text(json.dumps(inventory), encoding="utf-8")  # JSON is YAML
    return str(path)


_SQL = """
import json, sqlite3, sys
connection = sqlite3.connect("/var/lib/sonla-mail/users.sqlite", timeout=30)
connection.row_factory = sqlite3.Row
with connection:
    rows = [dict(row) for row in connection.execute(sys.argv[1], json.loads(sys.argv[2]))]
print(json.dumps(rows))
"""


def sql(host, query: str, *params) -> list[dict]:
    """Rows of a query on the user database inside the container, with ``?`` parameters."""
    result = host.run("python3 -c %s %s %s", _SQL, query, json.dumps(params))
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def rspamd_learned(host, message_id: str, kind: str) -> bool:
    """Whether rspamd's controller learned the message as ``kind`` (spam or ham, R12.5): it logs each one it
    learns, while ``rspamc stat``'s counters are refreshed lazily."""
    line = f"learned message as {kind}: {message_id.strip('<>')}"
    return host.run("grep -qF %s /var/log/rspamd/rspamd.log", line).rc == 0


_HTTP_GET = """
import sys, urllib.error, urllib.request
try:
    response = urllib.request.urlopen(sys.argv[1], timeout=10)
except urllib.error.HTTPError as error:
    response = error
print(response.status)
sys.stdout.write(response.read().decode())
"""


def http_get(host, port: int, path: str = "/metrics") -> tuple[int, str]:
    """The status and body of an HTTP GET inside the container, on 127.0.0.1 (the tests' management address)."""
    result = host.run("python3 -c %s %s", _HTTP_GET, f"http://127.0.0.1:{port}{path}")
    assert result.rc == 0, result.stderr
    status, _, body = result.stdout.partition("\n")
    return int(status), body


def scrape(host, port: int) -> str:
    """What an exporter serves at /metrics on the management address."""
    status, body = http_get(host, port)
    assert status == 200, (port, status, body[:500])
    return body


def assert_management_address_only(host, server_ip: str, *ports: int) -> None:
    """The ports listen on monitoring_listen_address (127.0.0.1 in the tests) and not on every address; the
    host, an outside client, cannot reach them at the container's own address (R10.2a)."""
    listening = host.run("ss -Hltn").stdout
    for port in ports:
        assert f"127.0.0.1:{port} " in listening, port
        assert f"*:{port} " not in listening and f"0.0.0.0:{port} " not in listening, port
        with pytest.raises(OSError):
            socket.create_connection((server_ip, port), timeout=5).close()
