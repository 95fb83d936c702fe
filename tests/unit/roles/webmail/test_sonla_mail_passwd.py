# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The server-side CLI the webmail calls (roles/webmail/files/sonla-mail-passwd): JSON in, JSON out.

Its rate limit (R10.2b) lives in the file "throttle_database" of its configuration; failures answer at once.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import json
import os
import time

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _userdb
from ansible_collections.sonla.mail.plugins.module_utils._password import hash_initial

SCRIPT = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "..", "roles", "webmail", "files", "sonla-mail-passwd"
)
ADDRESS = "dungct.skhcn@sonla.gov.vn"
INITIAL = "Xk7#pQ9wRt2mZa4v"


@pytest.fixture(scope="module")
def cli():
    loader = importlib.machinery.SourceFileLoader("sonla_mail_passwd", SCRIPT)
    spec = importlib.util.spec_from_loader("sonla_mail_passwd", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture
def config(tmp_path, monkeypatch):
    database = tmp_path / "users.sqlite"
    connection = _userdb.connect(str(database))
    now = _userdb.utc_now()
    connection.execute(
        "INSERT INTO mailbox (address, local_part, domain, kind, owner_id, display_name, organization, quota_mb,"
        " state, password, must_change, created_at, password_changed_at, updated_at)"
        " VALUES (?, 'dungct.skhcn', 'sonla.gov.vn', 'person', 'p4', 'Cầm Thị Dung', 'skhcn', 64,"
        " 'active', ?, 1, ?, ?, ?)",
        (ADDRESS, hash_initial(INITIAL), now, now, now),
    )
    connection.close()
    path = tmp_path / "passwd.json"
    path.write_text(json.dumps({
        "database": str(database),
        "throttle_database": str(tmp_path / "throttle.sqlite"),
        "password_policy": {"min_length": 10},
    }))
    return str(path)


def run(cli, monkeypatch, capsys, config, command, request):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(request)))
    code = cli.main([command, "--config", config])
    return code, json.loads(capsys.readouterr().out)


def test_status_then_change_then_ok(cli, monkeypatch, capsys, config):  # R6.1a, R12.2
    code, out = run(cli, monkeypatch, capsys, config, "status", {"address": ADDRESS, "password": INITIAL})
    assert (code, out) == (0, {"status": "change_required", "reason": "must_change"})
    code, out = run(
        cli,
        monkeypatch,
        capsys,
        config,
        "change",
        {"address": ADDRESS, "old_password": INITIAL, "new_password": "Sonla#2025moi"},
    )
    assert (code, out) == (0, {"changed": True, "violations": []})
    code, out = run(cli, monkeypatch, capsys, config, "status", {"address": ADDRESS, "password": "Sonla#2025moi"})
    assert (code, out) == (0, {"status": "ok"})


def test_refusal_names_the_rule_in_both_languages(cli, monkeypatch, capsys, config):  # R6.2
    code, out = run(
        cli,
        monkeypatch,
        capsys,
        config,
        "change",
        {"address": ADDRESS, "old_password": INITIAL, "new_password": "Sonla#25"},
    )
    assert code == 1
    assert out["changed"] is False
    assert out["violations"] == [
        {
            "rule": "R6.2",
            "code": "too_short",
            "message_vi": "Mật khẩu phải có tối thiểu 10 ký tự (hiện có 8).",  # the policy file's min_length
            "message_en": "The password must be at least 10 characters long (it has 8).",
        }
    ]


def test_wrong_password_is_invalid(cli, monkeypatch, capsys, config):
    code, out = run(cli, monkeypatch, capsys, config, "status", {"address": ADDRESS, "password": "nope"})
    assert (code, out["status"]) == (1, "invalid")
    code, out = run(
        cli,
        monkeypatch,
        capsys,
        config,
        "change",
        {"address": ADDRESS, "old_password": "nope", "new_password": "Sonla#2025moi"},
    )
    assert (code, out["status"], out["violations"][0]["code"]) == (1, "invalid", "wrong_password")


def test_bad_input_is_a_usage_error(cli, monkeypatch, capsys, config):
    code, out = run(cli, monkeypatch, capsys, config, "status", {"address": ADDRESS})
    assert code == 2
    assert "password" in out["error"]


def test_a_wrong_password_answers_at_once_and_the_limit_throttles(cli, monkeypatch, capsys, config):  # R10.2b
    """No sleep holds the PHP-FPM worker; after 5 failures for the address nothing more is verified."""
    for _ in range(5):
        start = time.monotonic()
        wrong = {"address": ADDRESS, "password": "nope", "client": "192.0.2.7"}
        code, out = run(cli, monkeypatch, capsys, config, "status", wrong)
        assert (code, out) == (1, {"status": "invalid"})
        assert time.monotonic() - start < 1.5
    code, out = run(cli, monkeypatch, capsys, config, "status", {"address": ADDRESS, "password": INITIAL, "client": "192.0.2.8"})
    assert (code, out) == (1, {"status": "throttled"})
    code, out = run(
        cli, monkeypatch, capsys, config, "change",
        {"address": ADDRESS, "old_password": INITIAL, "new_password": "Sonla#2025moi", "client": "192.0.2.8"},
    )
    assert (code, out["status"], out["violations"][0]["code"]) == (1, "throttled", "too_many_attempts")


def test_a_suspended_user_with_the_right_password_learns_since_when(cli, monkeypatch, capsys, config):  # R8.1
    database = json.loads(open(config, encoding="utf-8").read())["database"]
    connection = _userdb.connect(database)
    connection.execute("UPDATE mailbox SET state = 'suspended', suspended_at = '2025-06-02 01:00:00'")
    connection.close()
    code, out = run(cli, monkeypatch, capsys, config, "status", {"address": ADDRESS, "password": INITIAL})
    assert (code, out) == (0, {"status": "suspended", "since": "2025-06-02"})
    code, out = run(cli, monkeypatch, capsys, config, "status", {"address": ADDRESS, "password": "nope"})
    assert (code, out) == (1, {"status": "invalid"})


def test_a_new_password_with_a_nul_is_refused(cli, monkeypatch, capsys, config):  # SASL PLAIN cannot carry it
    code, out = run(
        cli, monkeypatch, capsys, config, "change",
        {"address": ADDRESS, "old_password": INITIAL, "new_password": "Sonla#2025\u0000moi"},
    )
    assert code == 1
    assert [v["code"] for v in out["violations"]] == ["control_character"]


@pytest.mark.parametrize("client", [7, "x" * 65, "10.0.0.1\n"])
def test_a_bad_client_is_a_usage_error(cli, monkeypatch, capsys, config, client):
    code, out = run(cli, monkeypatch, capsys, config, "status", {"address": ADDRESS, "password": INITIAL, "client": client})
    assert code == 2
    assert "client" in out["error"]
