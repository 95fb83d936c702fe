# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes every module of this collection shares (check mode plans without applying, STYLE.md).

A module extends ``sonla.mail.attributes`` and one of ``.DIFF`` or ``.NO_DIFF``. Each fragment is a literal:
ansible-test reads them without running Python.
"""


class ModuleDocFragment:
    # Every module plans in check mode and applies nothing.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing the target.
    support: full
"""

    # Shows what changed, or would change, as a diff.
    DIFF = r"""
attributes:
  diff_mode:
    description: Shows what changed, or would change in check mode, in diff mode.
    support: full
"""

    # Nothing to show as a diff.
    NO_DIFF = r"""
attributes:
  diff_mode:
    description: Shows what changed, or would change in check mode, in diff mode.
    support: none
"""
