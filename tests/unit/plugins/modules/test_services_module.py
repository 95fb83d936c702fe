"""sonla.mail.services (issue 19): a role's daemons in one module run, against a simulated server: systemd's systemctl,
or Debian's init scripts with update-rc.d's links. Check mode plans without running anything that changes."""

from unittest import mock

from module_runner import run

from ansible_collections.sonla.mail.plugins.modules import services


class Server:
    """Services with a running flag and boot links, answering the commands the module runs."""

    def __init__(self, running=(), enabled=(), linked=(), broken=()):
        self.running, self.enabled, self.linked = set(running), set(enabled), set(linked) | set(enabled)
        self.broken = set(broken)
        self.commands = []

    def run_command(self, command, **_):
        self.commands.append(command)
        verb, name = (command[1], command[-1]) if command[0] == "systemctl" else (command[2], command[1])
        if verb in ("is-active", "status"):
            return (0 if name in self.running else 3), "", ""
        if verb == "is-enabled":
            return (0 if name in self.enabled else 1), "", ""
        if name in self.broken:
            return 1, "", f"Job for {name} failed."
        if verb == "start":
            self.running.add(name)
        elif verb == "stop":
            self.running.discard(name)
        elif verb == "enable":
            self.enabled.add(name)
        elif verb == "disable":
            self.enabled.discard(name)
        elif verb == "defaults":
            self.linked.add(name)
        return 0, "", ""

    def links(self, pattern):
        name, start = pattern.rsplit("??", 1)[1], "/S??" in pattern
        return [pattern] if (name in self.enabled if start else name in self.linked) else []

    def changes(self):
        return [command for command in self.commands if command[1] not in ("is-active", "is-enabled")
                and command[-1] != "status"]


def converge(server, args, systemd):
    with mock.patch.object(services.AnsibleModule, "run_command", server.run_command), \
            mock.patch.object(services.os.path, "isdir", lambda path: systemd and path == "/run/systemd/system"), \
            mock.patch.object(services.os.path, "exists", lambda path: True), \
            mock.patch.object(services.glob, "glob", server.links):
        return run(services, args)


def test_with_systemd_check_mode_plans_then_apply_then_nothing_to_do():
    server = Server(running={"valkey-server"}, enabled={"valkey-server", "clamav-freshclam"})
    args = {"started": ["valkey-server", "rspamd"], "stopped": ["clamav-freshclam"]}

    ok, planned = converge(server, {**args, "_ansible_check_mode": True}, systemd=True)
    assert ok and planned["changed"]
    assert (planned["started"], planned["enabled"], planned["disabled"]) == (["rspamd"], ["rspamd"], ["clamav-freshclam"])
    assert planned["unchanged"] == ["valkey-server"] and server.changes() == []  # check mode changes nothing

    ok, applied = converge(server, args, systemd=True)
    assert ok and applied["changed"]
    assert server.changes() == [["systemctl", "start", "rspamd"], ["systemctl", "enable", "rspamd"],
                                ["systemctl", "disable", "clamav-freshclam"]]

    ok, again = converge(server, args, systemd=True)
    assert ok and not again["changed"] and again["unchanged"] == ["valkey-server", "rspamd", "clamav-freshclam"]


def test_with_init_scripts_a_service_without_links_gets_the_defaults_first():
    server = Server(running={"cron"}, enabled={"cron"})
    ok, applied = converge(server, {"started": ["cron", "prometheus-node-exporter"]}, systemd=False)
    assert ok and applied["started"] == applied["enabled"] == ["prometheus-node-exporter"]
    assert server.changes() == [["service", "prometheus-node-exporter", "start"],
                                ["update-rc.d", "prometheus-node-exporter", "defaults"],
                                ["update-rc.d", "prometheus-node-exporter", "enable"]]
    ok, again = converge(server, {"started": ["cron", "prometheus-node-exporter"]}, systemd=False)
    assert ok and not again["changed"]


def test_a_service_that_fails_to_start_stops_the_run_with_its_message():
    server = Server(broken={"rspamd"})
    ok, failed = converge(server, {"started": ["rspamd", "nginx"]}, systemd=True)
    assert not ok and failed["msg"] == "rspamd: systemctl start rspamd failed: Job for rspamd failed."
    assert ["systemctl", "start", "nginx"] not in server.commands  # the services after it are left alone


def test_a_service_both_started_and_stopped_is_refused_before_anything_runs():
    server = Server()
    ok, failed = converge(server, {"started": ["cron"], "stopped": ["cron"]}, systemd=True)
    assert not ok and "both started and stopped: cron" in failed["msg"] and server.commands == []


def test_an_unknown_init_script_is_named_and_planned_in_check_mode():
    server = Server()
    with mock.patch.object(services.AnsibleModule, "run_command", server.run_command), \
            mock.patch.object(services.os.path, "isdir", lambda path: False), \
            mock.patch.object(services.os.path, "exists", lambda path: False):
        ok, failed = run(services, {"started": ["valkey-server"]})
        assert not ok and failed["msg"] == "valkey-server: no such service (no /etc/init.d/valkey-server)"
        # The plan of a new server, whose packages are not installed yet: it would be started.
        ok, planned = run(services, {"started": ["valkey-server"], "_ansible_check_mode": True})
    assert ok and planned["started"] == planned["enabled"] == ["valkey-server"] and server.commands == []
