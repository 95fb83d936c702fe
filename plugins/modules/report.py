#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: report
short_description: Write the monthly or quarterly report for the Department, keep it on the server and mail it
description:
  - Runs on the mail server. Writes the report of one month or quarter (R11.3), province-wide and per agency, in
    Vietnamese, as a self-contained HTML page with charts (matplotlib, SVG inline) and as CSV files, in
    C(<output_dir>/<period>/), and mails it to O(send_to) when it is new or different.
  - Beside it, one page per agency, C(agency-<id>.html), is the same page with that agency's rows alone, its
    sub-units included (R5.1c). These pages are kept on the server, not mailed.
  - Covers accounts created, changed, suspended (by cause), restored, revoked and deleted with their request
    references (R11.2); each restore's working days from the agency's request to the restore against 3 (R8.3b);
    inactive accounts and accounts near revocation (R8.2a, R8.1); quota use (R9.2a); messages sent and
    received per agency and mail refused as spam or malware (the Postfix log); the age of the last good backup
    (the lifecycle's daily log, R10.2c). C(docs/reports.md) says where each number comes from.
  - The same period gives the same files. The accounts' state and the mail folders' sizes of a finished period
    are measured once, at the first run after it ended, and kept as C(state.json) next to the report.
  - Needs python3-matplotlib on the server (C(playbooks/report.yml) installs it).
version_added: 0.3.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.NO_DIFF
  - sonla.mail.notices
options:
  period:
    description: The month (C(YYYY-MM)) or quarter (C(YYYY-Qn)). Defaults to the last finished one of O(kind).
    type: str
  kind:
    description: Which period O(period) defaults to.
    type: str
    choices: [month, quarter]
    default: month
  database:
    description: The SQLite user database.
    type: path
    default: /var/lib/sonla-mail/users.sqlite
  mail_root:
    description: Root of the mail storage, C(<mail_root>/<domain>/<local part>), for the quota use.
    type: path
    default: /var/vmail
  postfix_logs:
    description: Postfix's log files, rotated and gzip-compressed ones included (glob patterns).
    type: list
    elements: str
    default: [/var/log/postfix/mail.log*]
  lifecycle_logs:
    description: The lifecycle's daily log (one JSON line per run, with the backup's age), rotated ones included.
    type: list
    elements: str
    default: [/var/log/sonla-mail/lifecycle.log*]
  spam_marker:
    description: Text of the filter's reply that names a refusal as spam (the filter role's C(filter_spam_reply)).
    type: str
    default: spam
  malware_marker:
    description: Text of the filter's reply that names a refusal as malware (C(filter_virus_reply)).
    type: str
    default: malware
  output_dir:
    description: Where the reports are kept, one folder per period.
    type: path
    default: /var/lib/sonla-mail/reports
  organizations:
    description: The organizations from M(sonla.mail.mail_inventory) (id, name, kind, parent).
    type: list
    elements: dict
    required: true
  domain:
    description: The mail domain (the sender of the mail).
    type: str
    required: true
  policy:
    description: The policy from M(sonla.mail.mail_inventory); C(inactivity_suspend_days), C(revoke_after_suspended_days)
      and C(quota_warning_percent) are read.
    type: dict
    default: {}
  send_to:
    description: Who receives the report by mail (the Department's mailbox). Empty sends nothing.
    type: list
    elements: str
    default: []
  now:
    description: The current time, C(YYYY-MM-DD HH:MM:SS) UTC; defaults to the clock (tests).
    type: str
seealso:
  - module: sonla.mail.notices
"""

EXAMPLES = r"""
- name: Write and mail last quarter's report (R11.3)
  sonla.mail.report:
    kind: quarter
    organizations: "{{ hostvars['localhost'].sonla_mail_inventory.organizations }}"
    domain: sonla.gov.vn
    send_to: [skhcn@sonla.gov.vn]
"""

RETURN = r"""
period:
  description: The period reported.
  returned: always
  type: str
  sample: 2026-11
directory:
  description: The folder holding C(report.html), the CSV files and C(state.json).
  returned: always
  type: str
  sample: /var/lib/sonla-mail/reports/2026-11
files:
  description: The files of the province's report, those mailed.
  returned: always
  type: list
  elements: str
  sample: [report.html, agencies.csv, events.csv]
agency_pages:
  description: One page per agency of the report, by the same renderer with the agency's rows alone, kept beside it.
  returned: always
  type: list
  elements: str
  sample: [agency-chiengmung.html, agency-skhcn.html]
totals:
  description: The province's totals (created, changed, suspended, restored, revoked, removed, sent, received, spam, malware).
  returned: always
  type: dict
  sample: {added: 12, sent: 3400}
restores_late:
  description: Restores done later than 3 working days after the request (R8.3b).
  returned: always
  type: int
  sample: 0
mailed:
  description: Whom the report was mailed to (only when it was new or different).
  returned: always
  type: list
  elements: str
  sample: [skhcn@sonla.gov.vn]
"""

import glob
import gzip
import json
import os
from datetime import UTC, date, datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils import _notices, _report, _userdb

STATE_FILE = "state.json"


def read_lines(patterns: list[str]):
    """Every line of these files, the gzip-compressed rotations too, oldest file first."""
    paths = sorted({path for pattern in patterns for path in glob.glob(pattern) if os.path.isfile(path)},
                   key=lambda path: (os.path.getmtime(path), path))
    for path in paths:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as stream:
            yield from stream


def folder_bytes(path: str) -> int:
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue  # a message expunged while walking
    return total


def measure_state(connection, mail_root: str, at: str, policy: dict) -> dict:
    mailboxes = list(_userdb.read_mailboxes(connection).values())
    usage = {row["address"]: folder_bytes(os.path.join(mail_root, row["domain"], row["local_part"])) for row in mailboxes}
    return _report.snapshot(mailboxes, usage, at, policy)


def write_if_changed(module, path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8") as stream:
            if stream.read() == text:
                return False
    except OSError:
        pass
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(temporary, 0o640)
    module.atomic_move(temporary, path)
    return True


def report_mail(params: dict, report: dict, files: dict[str, str], now: str):
    title = f"Báo cáo hệ thống thư điện tử tỉnh Sơn La - {report['title']}"
    body = (f"Kính gửi Sở Khoa học và Công nghệ,\n\nBáo cáo định kỳ {report['title']} ({report['start']} - {report['end']}, "
            f"R11.3) gửi kèm: report.html (mở bằng trình duyệt) và các tệp CSV.\nPeriodic report of the Sơn La mail "
            f"system, {report['period']}: report.html and CSV files attached.\n")
    messages = []
    moment = datetime.strptime(now[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    for to in params["send_to"]:
        message = _notices._message(params["sender"] or f"postmaster@{params['domain']}", params["domain"], to, "",
                                    f"[Thư điện tử Sơn La] {title}", body, moment)
        for name in sorted(files):
            subtype = "html" if name.endswith(".html") else "csv"
            message.add_attachment(files[name].encode("utf-8"), maintype="text", subtype=subtype, filename=name)
        messages.append(message)
    return messages


def main():
    module = AnsibleModule(
        argument_spec={
            "period": {"type": "str"},
            "kind": {"type": "str", "choices": ["month", "quarter"], "default": "month"},
            "database": {"type": "path", "default": "/var/lib/sonla-mail/users.sqlite"},
            "mail_root": {"type": "path", "default": "/var/vmail"},
            "postfix_logs": {"type": "list", "elements": "str", "default": ["/var/log/postfix/mail.log*"]},
            "lifecycle_logs": {"type": "list", "elements": "str", "default": ["/var/log/sonla-mail/lifecycle.log*"]},
            "spam_marker": {"type": "str", "default": "spam"},
            "malware_marker": {"type": "str", "default": "malware"},
            "output_dir": {"type": "path", "default": "/var/lib/sonla-mail/reports"},
            "organizations": {"type": "list", "elements": "dict", "required": True},
            "domain": {"type": "str", "required": True},
            "policy": {"type": "dict", "default": {}},
            "send_to": {"type": "list", "elements": "str", "default": []},
            "now": {"type": "str"},
            **_notices.SMTP_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    params = module.params
    now = params["now"] or _userdb.utc_now()
    try:
        period = _report.parse_period(params["period"] or _report.previous_period(params["kind"], date.fromisoformat(now[:10])))
    except _report.ReportError as error:
        module.fail_json(msg=str(error))
    if not os.path.exists(params["database"]):
        module.fail_json(msg=f"no user database at {params['database']}")
    connection = _userdb.connect(params["database"], upgrade=False)
    columns = {row["name"] for row in connection.execute("PRAGMA table_info(mailbox_event)")}
    if "organization" not in columns:
        module.fail_json(msg=f"{params['database']} predates the reports (schema {_userdb.SCHEMA_VERSION}): converge first")

    directory = os.path.join(params["output_dir"], period.name)
    state_path = os.path.join(directory, STATE_FILE)
    closed = period.end.isoformat() <= now[:10]
    state = None
    if closed and os.path.exists(state_path):  # a finished period's state is measured once (deterministic)
        with open(state_path, encoding="utf-8") as stream:
            state = json.load(stream)
    if state is None:
        at = f"{period.end.isoformat()} 00:00:00" if closed else now[:19]
        state = measure_state(connection, params["mail_root"], at, params["policy"])

    events = [dict(row) for row in connection.execute(
        "SELECT id, at, address, action, request_ref, detail, organization, requested_at FROM mailbox_event"
        " WHERE at >= ? AND at < ? ORDER BY id", (period.start.isoformat(), period.end.isoformat()))]
    address_organizations = {row["address"]: row["organization"] for row in connection.execute(
        "SELECT address, organization FROM mailbox_event WHERE organization IS NOT NULL ORDER BY id")}
    address_organizations.update({address: row["organization"] for address, row in _userdb.read_mailboxes(connection).items()})
    mail = _report.count_mail(read_lines(params["postfix_logs"]), period, params["malware_marker"], params["spam_marker"])
    backup = _report.backup_in_period(read_lines(params["lifecycle_logs"]), period)

    from ansible_collections.sonla.mail.plugins.module_utils import _report_charts  # matplotlib: only here

    try:
        report, files, pages = _report.report_files(period, events, state, mail, backup, params["organizations"],
                                                    address_organizations, _report_charts.svg_charts)
    except _report.ReportError as error:
        module.fail_json(msg=str(error))
    result = {"period": period.name, "directory": directory, "files": sorted(files), "agency_pages": sorted(pages),
              "totals": report["totals"], "restores_late": report["restores_late"], "mailed": [], "changed": False}
    if module.check_mode:
        module.exit_json(**result)
    os.makedirs(directory, mode=0o750, exist_ok=True)
    if closed:
        result["changed"] |= write_if_changed(module, state_path, json.dumps(state, ensure_ascii=False, sort_keys=True, indent=1))
    for name, text in {**files, **pages}.items():
        result["changed"] |= write_if_changed(module, os.path.join(directory, name), text)
    if result["changed"] and params["send_to"]:  # the province's page and tables; the agencies' pages stay here
        errors = _notices.send(report_mail(params, report, files, now), params["smtp_host"], params["smtp_port"])
        if errors:
            module.fail_json(msg="the report was written but not mailed: " + "; ".join(errors), **result)
        result["mailed"] = params["send_to"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
