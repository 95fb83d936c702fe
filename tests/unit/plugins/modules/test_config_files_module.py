"""sonla.mail.config_files (issue 19): a role's files in one module run, with the template module's guarantees:
check mode plans, diff mode shows, a hand edit is found and undone, a failed check leaves the file alone."""

import grp
import os
import pwd
import subprocess

from module_runner import run

from ansible_collections.sonla.mail.plugins.module_utils import _config_files
from ansible_collections.sonla.mail.plugins.modules import config_files, packages

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def entry(dest, content, **extra):
    return {"dest": str(dest), "content": content, "owner": OWNER, "group": GROUP, **extra}


def test_check_mode_plans_then_apply_then_nothing_to_do(tmp_path):
    args = {"directories": [{"path": str(tmp_path / "etc" / "app"), "owner": OWNER, "group": GROUP, "mode": "0750"}],
            "files": [entry(tmp_path / "etc" / "app" / "main.cf", "myhostname = mail\n"),
                      entry(tmp_path / "run.sh", "#!/bin/sh\n", mode="0755")]}
    ok, plan = run(config_files, {**args, "_ansible_check_mode": True, "_ansible_diff": True})
    assert ok and plan["changed"]
    assert plan["added"] == [str(tmp_path / "etc" / "app"), str(tmp_path / "etc" / "app" / "main.cf"), str(tmp_path / "run.sh")]
    assert not (tmp_path / "etc").exists() and not (tmp_path / "run.sh").exists()  # check mode writes nothing
    assert "myhostname = mail" in plan["diff"][1]["after"]

    ok, applied = run(config_files, args)
    assert ok and applied["changed"] and len(applied["added"]) == 3
    assert (tmp_path / "etc" / "app" / "main.cf").read_text() == "myhostname = mail\n"
    assert os.stat(tmp_path / "run.sh").st_mode & 0o7777 == 0o755
    assert os.stat(tmp_path / "etc" / "app").st_mode & 0o7777 == 0o750
    assert not [name for name in os.listdir(tmp_path / "etc" / "app") if name.startswith(".sonla-")]

    ok, again = run(config_files, args)
    assert ok and not again["changed"] and len(again["unchanged"]) == 3


def test_a_folders_missing_parents_are_made_for_the_files_in_them(tmp_path):
    plugin = tmp_path / "plugins" / "sonla_password"
    args = {"directories": [{"path": str(plugin / "localization"), "owner": OWNER, "group": GROUP, "mode": "0755"}],
            "files": [entry(plugin / "sonla_password.php", "<?php\n"), entry(plugin / "localization" / "vi_VN.inc", "x\n")]}
    ok, plan = run(config_files, {**args, "_ansible_check_mode": True})
    assert ok and plan["added"] == [str(plugin / "localization"), str(plugin / "sonla_password.php"),
                                    str(plugin / "localization" / "vi_VN.inc")]
    ok, applied = run(config_files, args)
    assert ok and applied["changed"] and (plugin / "sonla_password.php").read_text() == "<?php\n"
    assert os.stat(plugin).st_mode & 0o7777 == 0o755


def test_a_hand_edit_is_reported_in_check_mode_and_undone(tmp_path):
    dest = tmp_path / "main.cf"
    args = {"files": [entry(dest, "relayhost =\n")]}
    run(config_files, args)
    dest.write_text("relayhost =\n# a hand edit\n")
    ok, plan = run(config_files, {**args, "_ansible_check_mode": True, "_ansible_diff": True})
    assert ok and plan["changed"] and plan["updated"] == [str(dest)]
    assert plan["diff"] == [{"before_header": str(dest), "after_header": str(dest),
                             "before": "relayhost =\n# a hand edit\n", "after": "relayhost =\n"}]
    assert dest.read_text() == "relayhost =\n# a hand edit\n"
    ok, applied = run(config_files, args)
    assert ok and applied["changed"] and dest.read_text() == "relayhost =\n"


def test_a_mode_change_alone_keeps_the_content(tmp_path):
    dest = tmp_path / "secret.conf"
    run(config_files, {"files": [entry(dest, "key\n", mode="0600")]})
    os.chmod(dest, 0o644)
    ok, result = run(config_files, {"files": [entry(dest, "key\n", mode="0600")], "_ansible_diff": True})
    assert ok and result["updated"] == [str(dest)] and os.stat(dest).st_mode & 0o7777 == 0o600
    assert result["diff"][0]["before"].startswith(f"owner {OWNER}, group {GROUP}, mode 0644")


def test_a_file_that_fails_its_check_is_left_alone(tmp_path):
    first, second = tmp_path / "a.conf", tmp_path / "b.conf"
    second.write_text("old\n")
    ok, result = run(config_files, {"files": [entry(first, "good\n"), entry(second, "bad\n", validate="grep -q good %s")]})
    assert not ok and "b.conf: the new content failed its check" in result["msg"]
    assert first.read_text() == "good\n"  # written in order, as separate tasks would be
    assert second.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["a.conf", "b.conf"]  # no temporary file left


def test_bad_entries_change_nothing(tmp_path):
    ok, result = run(config_files, {"files": [entry(tmp_path / "a.conf", "x\n"), entry(tmp_path / "b.conf", "y\n", mode="0648"),
                                              entry(tmp_path / "missing" / "c.conf", "z\n"),
                                              entry(tmp_path / "d.conf", "w\n", owner="sonla-no-such-user")]})
    assert not ok
    assert "d.conf: owner sonla-no-such-user does not exist" in result["msg"]
    assert "b.conf: mode must be an octal string such as '0644', not '0648'" in result["msg"]
    assert "missing/c.conf: its folder does not exist" in result["msg"]
    assert not (tmp_path / "a.conf").exists()


def test_modes_are_octal_strings():
    assert _config_files.parse_mode("2770", "d") == 0o2770
    for bad in (420, "0648", "rw-r--r--", "01777x", "12345"):
        try:
            _config_files.parse_mode(bad, "d")
        except ValueError as error:
            assert "d: mode must be an octal string" in str(error)
        else:
            raise AssertionError(f"{bad!r} accepted")


def test_packages_reports_what_dpkg_lacks():
    # dpkg-query is on every Debian machine; a name no archive has is never installed.
    ok, result = run(packages, {"name": ["dpkg", "sonla-no-such-package"]})
    assert ok and not result["changed"] and result["missing"] == ["sonla-no-such-package"]


def test_packages_returns_the_installed_versions_of_its_names_and_reported_ones():
    # The roles read Dovecot's, Postfix's and nginx's versions here instead of a command task each (issue 19).
    ok, result = run(packages, {"name": ["dpkg"], "report": ["coreutils", "sonla-no-such-package"]})
    assert ok and result["missing"] == [] and sorted(result["versions"]) == ["coreutils", "dpkg"]
    dpkg = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "dpkg"], capture_output=True, text=True, check=True).stdout
    assert dpkg.startswith(result["versions"]["dpkg"]) and result["versions"]["dpkg"][0].isdigit()
    ok, nothing = run(packages, {"name": []})  # dpkg-query without names would list every package
    assert ok and nothing["versions"] == {} and nothing["missing"] == []
