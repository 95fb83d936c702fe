# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``sonla.mail.config_files``: templates rendered and files read here, then one module run.

Rendering follows ``ansible.builtin.template`` step for step (search path, ``ansible_managed``, trim_blocks), so a
file moved from a template task to this one renders to the same bytes and a converge finds nothing to change.
"""

from __future__ import annotations

import os

# The function ansible.builtin.template itself calls for ansible_managed and the template_* variables.
from ansible._internal._templating import _template_vars
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

SOURCES = ("template", "src", "content")


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        files = []
        for entry in self._task.args.get("files") or []:
            entry = dict(entry)
            given = [key for key in SOURCES if entry.get(key) is not None]
            if len(given) != 1:
                raise AnsibleActionFail(f"{entry.get('dest')}: give exactly one of template, src or content")
            try:
                template_vars = entry.pop("vars", None) or {}
                if given == ["template"]:
                    entry["content"] = self._render(entry.pop("template"), entry.get("dest"), {**task_vars, **template_vars})
                elif given == ["src"]:
                    entry["content"] = self._loader.get_text_file_contents(self._find_needle("files", entry.pop("src")))
            except AnsibleError as error:
                raise AnsibleActionFail(f"{entry.get('dest')}: {error}") from error
            files.append(entry)
        module_args = dict(self._task.args, files=files)
        result.update(self._execute_module("sonla.mail.config_files", module_args=module_args, task_vars=task_vars))
        return result

    def _render(self, source: str, dest: str | None, task_vars: dict) -> str:
        path = self._find_needle("templates", source)
        searchpath = [*task_vars.get("ansible_search_path", []), self._loader._basedir, os.path.dirname(path)]
        variables = dict(task_vars)
        variables.update(_template_vars.generate_ansible_template_vars(
            path=source, fullpath=path, dest_path=dest, include_ansible_managed="ansible_managed" not in variables))
        templar = self._templar.copy_with_new_env(
            searchpath=[folder for base in searchpath for folder in (os.path.join(base, "templates"), base)],
            available_variables=variables)
        rendered = templar.template(trust_as_template(self._loader.get_text_file_contents(path)),
                                    escape_backslashes=False,
                                    overrides=dict(trim_blocks=True, lstrip_blocks=False, newline_sequence="\n"))
        return rendered or ""
