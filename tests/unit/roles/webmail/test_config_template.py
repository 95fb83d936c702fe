# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Roundcube's config.inc.php.j2 with hostile values: still valid PHP, every value intact (issue 10, R3.1, R3.4).

Each string reaches PHP through ``sonla.mail.php_string``; this renders the real template and asks the real
PHP interpreter (Debian's ``php-cli``) to lint the file and to print back ``$config``. Without ``php`` the
tests are skipped with the reason (install ``php-cli``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import jinja2
import pytest
from ansible.plugins.filter.core import comment

from ansible_collections.sonla.mail.plugins.filter.quoting import php_string

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "webmail")
PHP = shutil.which("php")
needs_php = pytest.mark.skipif(PHP is None, reason="php is not installed (Debian package php-cli)")

HOSTILE = "\\'; system('id'); //"  # ends a naive '...' literal and runs a command
VALUES = {
    "webmail_product_name": HOSTILE,
    "webmail_language": "vi_VN'; system('id'); $x='",
    "webmail_support_url": "https://hotro.sonla.gov.vn/?a=1&b='2'\\",
    "webmail_imap_uri": "ssl://127.0.0.1:993'.system('id').'",
    "webmail_smtp_uri": "ssl://127.0.0.1:465\\",
    "webmail_mail_tls_name": "mail.sonla.gov.vn\n?><?php system('id'); ?>",
    # Roundcube's database (roles/webmail/vars: a SQLite file, or PostgreSQL with a password on several hosts).
    "__webmail_roundcube_dsn": "pgsql://sonla_roundcube:p%27w'\\@db/sonla_roundcube",
    "webmail_managesieve_host": "tls://127.0.0.1'.system('id').'",
    "webmail_directory_path": "/var/lib/x'y\\/directory.sqlite",
    "__webmail_passwd_command": "/usr/local/sbin/sonla-mail-passwd'",
    "__webmail_policy": {"min_length": 8, "special_characters": "!@#%$*&'\\", "max_age_days": 90},
}


def render(tmp_path, **overrides) -> str:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROLE, "templates")),
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    environment.filters["comment"] = comment
    environment.filters["sonla.mail.php_string"] = php_string
    key_dir = tmp_path / "it's \\ here"
    key_dir.mkdir()
    key_file = key_dir / "des-key.inc.php"
    key_file.write_text("<?php\n$config['des_key'] = 'k';\n")
    variables = {
        "ansible_managed": "Ansible managed",
        "webmail_host": "mail.sonla.gov.vn",
        "webmail_session_lifetime_minutes": 30,
        "webmail_max_attachment_mb": 25,
        "webmail_managesieve_port": 4190,
        "webmail_vacation_interval_days": 7,
        "__webmail_mail_ca_file": "/etc/ssl/it's.crt",
        "__webmail_des_key_file": str(key_file),
        **VALUES,
        **overrides,
    }
    path = tmp_path / "config.inc.php"
    path.write_text(environment.get_template("config.inc.php.j2").render(variables), encoding="utf-8")
    return str(path)


def php_config(path: str) -> dict:
    script = f"include {php_string(path)}; echo json_encode($config, JSON_UNESCAPED_UNICODE|JSON_UNESCAPED_SLASHES);"
    run = subprocess.run([PHP, "-r", script], capture_output=True, text=True, check=False, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


@needs_php
def test_hostile_values_give_valid_php(tmp_path):
    path = render(tmp_path)
    lint = subprocess.run([PHP, "-l", path], capture_output=True, text=True, check=False, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@needs_php
def test_hostile_values_arrive_intact_and_run_nothing(tmp_path):
    config = php_config(render(tmp_path))
    assert config["product_name"] == HOSTILE
    assert config["language"] == VALUES["webmail_language"]
    assert config["support_url"] == VALUES["webmail_support_url"]
    assert config["imap_host"] == VALUES["webmail_imap_uri"]
    assert config["smtp_host"] == VALUES["webmail_smtp_uri"]
    assert config["imap_conn_options"]["ssl"]["peer_name"] == VALUES["webmail_mail_tls_name"]
    assert config["imap_conn_options"]["ssl"]["cafile"] == "/etc/ssl/it's.crt"
    assert config["db_dsnw"] == VALUES["__webmail_roundcube_dsn"]
    assert config["sonla_password_command"][-1] == VALUES["__webmail_passwd_command"]
    assert config["sonla_password_special_characters"] == "!@#%$*&'\\"
    assert config["managesieve_host"] == VALUES["webmail_managesieve_host"]  # issue 17
    assert config["sonla_directory_path"] == VALUES["webmail_directory_path"]
    assert {"managesieve", "sonla_directory"} <= set(config["plugins"])
    assert config["autocomplete_addressbooks"] == ["sql", "sonla_directory"]
    assert config["des_key"] == "k"  # the include of a path with a quote and a backslash worked
    # Nothing but $config came out: no system('id') ran.
    assert set(config) >= {"product_name", "language", "plugins"}


@needs_php
def test_the_defaults_render_as_before(tmp_path):  # R3.4: Vietnamese product name and language
    plain = {key: value for key, value in VALUES.items() if not key.startswith("__")}
    plain["__webmail_roundcube_dsn"] = "sqlite:////var/lib/dbconfig-common/sqlite3/roundcube/roundcube?mode=0640"
    plain.update(webmail_product_name="Thư điện tử tỉnh Sơn La", webmail_language="vi_VN", webmail_support_url="",
                 webmail_imap_uri="ssl://127.0.0.1:993", webmail_smtp_uri="ssl://127.0.0.1:465",
                 webmail_mail_tls_name="mail.sonla.gov.vn")
    config = php_config(render(tmp_path, **plain))
    assert config["product_name"] == "Thư điện tử tỉnh Sơn La"
    assert config["language"] == "vi_VN"
    assert config["max_message_size"] == "25M"
    assert config["session_lifetime"] == 30


def test_no_template_value_reaches_php_unquoted():
    """Every {{ }} in the PHP template is an int or goes through php_string; none sits in a comment."""
    with open(os.path.join(ROLE, "templates", "config.inc.php.j2"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    for number, line in enumerate(lines, 1):
        if "{{" not in line or "ansible_managed" in line:
            continue
        assert not line.lstrip().startswith("//"), f"line {number}: a value in a PHP comment can end it: {line}"
        for expression in line.split("{{")[1:]:
            expression = expression.split("}}")[0]
            assert "| sonla.mail.php_string" in expression or expression.strip().endswith("| int"), (
                f"line {number}: {line}"
            )
