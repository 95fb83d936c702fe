# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes every module of this collection shares (check mode plans without applying, STYLE.md)."""


class ModuleDocFragment:
    # Check mode and diff mode both supported.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing the target.
    support: full
  diff_mode:
    description: Shows what changed, or would change in check mode, in diff mode.
    support: full
"""

    # Check mode supported; nothing to show as a diff. Written out: ansible-test reads fragments as literals.
    CHECK_MODE_ONLY = r"""
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing the target.
    support: full
  diff_mode:
    description: Shows what changed, or would change in check mode, in diff mode.
    support: none
"""
