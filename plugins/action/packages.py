# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``sonla.mail.packages``: dpkg is asked first; ``ansible.builtin.apt`` runs only when a package
is missing, with the task's options, so a first install is exactly what the apt task did. The installed versions
come from dpkg, asked again after apt has installed something."""

from __future__ import annotations

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        names = args.get("name")
        args["name"] = [names] if isinstance(names, str) else list(names or [])
        status = self._execute_module("sonla.mail.packages", module_args=args, task_vars=task_vars)
        if status.get("failed") or not status.get("missing"):
            result.update(status)
            return result
        apt_args = {key: value for key, value in args.items() if value is not None}
        apt_args.pop("report", None)
        result.update(self._execute_module("ansible.builtin.apt", module_args=dict(apt_args, state="present"),
                                           task_vars=task_vars))
        result["missing"] = status["missing"]
        if result.get("failed") or self._task.check_mode:  # a plan: the versions of what is installed already
            result["versions"] = status["versions"]
        else:
            result["versions"] = self._execute_module("sonla.mail.packages", module_args=args,
                                                      task_vars=task_vars).get("versions", {})
        return result
