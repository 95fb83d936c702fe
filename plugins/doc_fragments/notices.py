# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the modules that send notices through the local Postfix (R7.3)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  smtp_host:
    description: The Postfix that takes the notices.
    type: str
    default: 127.0.0.1
  smtp_port:
    description: Its port.
    type: int
    default: 25
  sender:
    description: Sender address of the notices. Defaults to C(postmaster@<domain>).
    type: str
  webmail_url:
    description: The webmail named in the notices, where users change their password. Defaults to C(https://mail.<domain>).
    type: str
"""
