#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config_files
short_description: Write a role's configuration files and make their folders in one task
description:
  - Writes several whole files, each with its owner, group and mode, in one module run on the server. A role uses it
    instead of one C(template) or C(copy) task per file, which costs two module runs per file even when nothing
    changes (issue 19).
  - Each file is compared whole with what the server holds, so a hand edit is reported in check mode and undone
    otherwise, as with C(template).
  - The action plugin renders O(files[].template) on the controller, with the task's variables and C(ansible_managed),
    exactly as C(ansible.builtin.template) does, and reads O(files[].src) from the role's C(files/) folder.
  - Files are written in the order given, as separate C(template) tasks would be. A file with a
    O(files[].validate) command is replaced only when its new content passes the check; the run then stops, and
    the files after it are left as they were.
  - Files are replaced atomically (a temporary file in the same folder, then a rename). Their folders must exist or
    be in O(directories), which are made first.
version_added: 0.9.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.DIFF
options:
  directories:
    description:
      - Folders to make, before the files, with their owner, group and mode. Missing parents are made with the same
        attributes, as with C(ansible.builtin.file) and O(ansible.builtin.file#module:state=directory).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The folder's absolute path on the server.
        type: path
        required: true
      owner:
        description: The folder's owner.
        type: str
        default: root
      group:
        description: The folder's group.
        type: str
        default: root
      mode:
        description: The folder's mode, an octal string such as V('0755').
        type: str
        default: "0755"
  files:
    description: The files to write.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: The file's absolute path on the server.
        type: path
        required: true
      template:
        description: A Jinja template in the role's C(templates/) folder, rendered on the controller.
        type: str
      vars:
        description: Variables for O(files[].template) alone, as C(vars) on a template task.
        type: dict
      src:
        description: A file in the role's C(files/) folder, copied as it is.
        type: str
      content:
        description: The file's content. The action plugin fills it in from O(files[].template) or O(files[].src).
        type: str
      owner:
        description: The file's owner.
        type: str
        default: root
      group:
        description: The file's group.
        type: str
        default: root
      mode:
        description: The file's mode, an octal string such as V('0644').
        type: str
        default: "0644"
      validate:
        description: A command that checks the new content before it replaces the file; C(%s) is the temporary file.
        type: str
"""

EXAMPLES = r"""
- name: Write rspamd's local configuration
  sonla.mail.config_files:
    files:
      - template: rspamd/actions.conf.j2
        dest: /etc/rspamd/local.d/actions.conf
      - template: autoconfig/config-v1.1.xml.j2
        dest: /var/www/autoconfig/mail/config-v1.1.xml
        validate: python3 -c "import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])" %s
      - src: sonla_password/sonla_password.php
        dest: /var/lib/roundcube/plugins/sonla_password/sonla_password.php
        group: www-data
        mode: "0640"
  notify: Rspamd configuration changed
"""

RETURN = r"""
added:
  description: The folders and files that were created (or would be, in check mode).
  returned: always
  type: list
  elements: str
updated:
  description: The folders and files whose content, owner, group or mode was set (or would be).
  returned: always
  type: list
  elements: str
unchanged:
  description: The folders and files that were already as desired.
  returned: always
  type: list
  elements: str
"""

import grp
import os
import pwd
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils._config_files import (
    ADDED,
    UNCHANGED,
    UPDATED,
    Attributes,
    parse_mode,
    plan_directory,
    plan_file,
)


def _name(lookup, number: int) -> str:
    try:
        return lookup(number)[0]
    except KeyError:  # an id without a name: compare by number
        return str(number)


def _attributes(status: os.stat_result) -> Attributes:
    return Attributes(_name(pwd.getpwuid, status.st_uid), _name(grp.getgrgid, status.st_gid), status.st_mode & 0o7777)


def _read(dest: str) -> tuple[bytes | None, Attributes | None]:
    try:
        with open(dest, "rb") as stream:
            return stream.read(), _attributes(os.fstat(stream.fileno()))
    except FileNotFoundError:
        return None, None


def _set_attributes(path: str, attributes: Attributes) -> None:
    os.chown(path, pwd.getpwnam(attributes.owner).pw_uid, grp.getgrnam(attributes.group).gr_gid)
    os.chmod(path, attributes.mode)


def _wanted(entry: dict, name: str, problems: list) -> Attributes | None:
    try:
        return Attributes(entry["owner"], entry["group"], parse_mode(entry["mode"], name))
    except ValueError as error:
        problems.append(str(error))
        return None


def _make_directory(path: str, attributes: Attributes) -> None:
    """The folder and its missing parents, each with the folder's attributes."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for folder in reversed(missing):
        os.mkdir(folder)
        _set_attributes(folder, attributes)


def _plan(module: AnsibleModule) -> tuple[list, list]:
    """Folder plans and file plans; fails, changing nothing, on any bad entry."""
    folders, files, problems = [], [], []
    made = set()
    for entry in module.params["directories"]:
        want = _wanted(entry, entry["path"], problems)
        if want is None:
            continue
        have = _attributes(os.stat(entry["path"])) if os.path.isdir(entry["path"]) else None
        folders.append((want, plan_directory(entry["path"], want, have)))
        made.add(os.path.normpath(entry["path"]))
    for entry in module.params["files"]:
        dest = entry["dest"]
        want = _wanted(entry, dest, problems)
        if entry["content"] is None:
            problems.append(f"{dest}: no content (give template, src or content)")
        elif want is not None and not (os.path.isdir(os.path.dirname(dest)) or os.path.dirname(dest) in made):
            problems.append(f"{dest}: its folder does not exist and is not in directories")
        elif want is not None:
            have, have_attributes = _read(dest)
            files.append((entry, want, plan_file(dest, entry["content"].encode("utf-8"), want, have, have_attributes)))
    if problems:
        module.fail_json(msg="; ".join(problems))
    return folders, files


def _apply(module: AnsibleModule, folders: list, files: list) -> None:
    for want, plan in folders:
        if plan.status == ADDED:
            _make_directory(plan.dest, want)
        elif plan.status == UPDATED:
            _set_attributes(plan.dest, want)
    # In order, as separate template tasks would: a file's check may read a file written before it (dovecot.conf
    # reads the DH group). The new content is written beside its file and checked before it replaces the file.
    for entry, want, plan in files:
        if plan.write:
            _replace(module, plan.dest, entry, want)
        elif plan.status == UPDATED:
            _set_attributes(plan.dest, want)


def _replace(module: AnsibleModule, dest: str, entry: dict, want: Attributes) -> None:
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".sonla-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(entry["content"].encode("utf-8"))
        _set_attributes(temporary, want)
        if entry["validate"]:
            code, out, err = module.run_command(entry["validate"].replace("%s", shlex.quote(temporary)),
                                                use_unsafe_shell=True)
            if code != 0:
                module.fail_json(msg=f"{dest}: the new content failed its check ({entry['validate']}); the file was "
                                     "left as it was", rc=code, stdout=out, stderr=err)
        os.replace(temporary, dest)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def main():
    attributes = dict(owner=dict(type="str", default="root"), group=dict(type="str", default="root"))
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True), mode=dict(type="str", default="0755"), **attributes)),
            files=dict(type="list", elements="dict", default=[], options=dict(
                dest=dict(type="path", required=True),
                template=dict(type="str"),
                vars=dict(type="dict"),
                src=dict(type="str"),
                content=dict(type="str"),
                mode=dict(type="str", default="0644"),
                validate=dict(type="str"),
                **attributes,
            )),
        ),
        supports_check_mode=True,
    )
    folders, files = _plan(module)
    plans = [plan for _, plan in folders] + [plan for _, _, plan in files]
    result = {status: [plan.dest for plan in plans if plan.status == status] for status in (ADDED, UPDATED, UNCHANGED)}
    result["changed"] = bool(result[ADDED] or result[UPDATED])
    if module._diff:
        result["diff"] = [plan.diff for plan in plans if plan.diff]
    if result["changed"] and not module.check_mode:
        _apply(module, folders, files)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
