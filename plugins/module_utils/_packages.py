# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``sonla.mail.packages`` reads from dpkg: which packages are installed, and their upstream versions (issue 19).

The roles choose configuration syntax and TLS parameter names by the installed versions of Dovecot, Postfix and
nginx. They read them from the package task's result instead of running ``dovecot --version``, ``postconf -dh
mail_version`` or ``nginx -v`` in a task of their own, on every run and in several roles.
"""

from __future__ import annotations

import re

# dpkg-query's format: one line per package it knows.
DPKG_FORMAT = "${Package}\t${db:Status-Status}\t${Version}\n"

# Debian's version: [epoch:]upstream[-revision]; Debian's repackaging marks (+dfsg1, ~deb12u1) follow the upstream.
_UPSTREAM = re.compile(r"^(?:\d+:)?(?P<upstream>[0-9][0-9A-Za-z.]*)")


def upstream_version(debian_version: str) -> str:
    """The upstream part of a Debian version: ``1:2.4.1+dfsg1-6`` -> ``2.4.1``, ``2:8.4+96`` -> ``8.4``. A version
    that does not start with a digit (Debian's policy says it does) is returned as dpkg gave it."""
    found = _UPSTREAM.match(debian_version.strip())
    return found.group("upstream").rstrip(".") if found else debian_version.strip()


def installed_versions(dpkg_output: str, names: list[str]) -> dict[str, str]:
    """Those of ``names`` that are installed, with their upstream versions, from dpkg-query's DPKG_FORMAT lines."""
    wanted = {name.split(":")[0] for name in names}  # a name may carry an architecture (libc6:amd64)
    versions = {}
    for line in dpkg_output.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[1] == "installed" and fields[0] in wanted:
            versions[fields[0].split(":")[0]] = upstream_version(fields[2])
    return versions
