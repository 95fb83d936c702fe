# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mail system's TLS profile (R10.2b) for the roles' templates, from plugins/module_utils/_tls.py.

    {{ 'postfix' | sonla.mail.tls_profile(postfix_version) | join('\\n') }}          # main.cf lines
    {{ 'dovecot' | sonla.mail.tls_profile('2.4.1', '/etc/dovecot/ffdhe2048.pem') }}  # 2.3 or 2.4 names
    {{ 'nginx' | sonla.mail.tls_profile('1.26.3', '/etc/nginx/ffdhe2048.pem') }}     # "name value;" lines
    {{ 'postgresql' | sonla.mail.tls_profile('17', dh_file) | join('\\n') }}         # "name = 'value'" lines
    {{ none | sonla.mail.tls_dh_params }}                                           # RFC 7919 ffdhe2048, PEM
    {{ resolv_conf_text | sonla.mail.tls_dane_resolver_problem(['127.0.0.1']) }}    # None when DANE can trust them
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.sonla.mail.plugins.module_utils import _tls


def tls_profile(daemon, version, dh_file=None) -> list[str]:
    """The profile as configuration lines of ``daemon`` (postfix, dovecot, nginx) at ``version``."""
    try:
        return _tls.lines(str(daemon), str(version), str(dh_file) if dh_file else None)
    except ValueError as error:
        raise AnsibleFilterError(f"tls_profile: {error}") from error


def tls_dh_params(_value=None) -> str:
    """The DH group of the profile's DHE suites, for the file ``tls_profile``'s ``dh_file`` names."""
    return _tls.FFDHE2048


def tls_dane_resolver_problem(resolv_conf, named) -> str | None:
    """Why DANE cannot trust the resolvers /etc/resolv.conf (``resolv_conf``, its text) lists; None when sound."""
    if not isinstance(named, list) or not all(isinstance(address, str) for address in named):
        raise AnsibleFilterError("tls_dane_resolver_problem: expected a list of resolver addresses")
    return _tls.dane_resolver_problem(named, str(resolv_conf))


class FilterModule:
    def filters(self):
        return {"tls_profile": tls_profile, "tls_dh_params": tls_dh_params,
                "tls_dane_resolver_problem": tls_dane_resolver_problem}
