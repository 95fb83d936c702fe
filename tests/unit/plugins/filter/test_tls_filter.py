# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' view of the TLS profile: _tls's lines and DH group, errors as filter errors."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.sonla.mail.plugins.filter.tls import (
    FilterModule,
    tls_dane_resolver_problem,
    tls_dh_params,
    tls_profile,
)
from ansible_collections.sonla.mail.plugins.module_utils import _tls


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {"tls_profile", "tls_dh_params", "tls_dane_resolver_problem"}


def test_lines_and_group_come_from_the_profile():
    assert tls_profile("dovecot", "2.4.1", "/x.pem") == _tls.lines("dovecot", "2.4.1", "/x.pem")
    assert tls_profile("nginx", "1.22.1") == _tls.lines("nginx", "1.22.1")
    assert tls_dh_params() == _tls.FFDHE2048


def test_a_bad_version_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="tls_profile: postfix 3.4.0 is older"):
        tls_profile("postfix", "3.4.0")


def test_dane_resolver_problem_passes_through_and_refuses_a_non_list():
    assert tls_dane_resolver_problem("nameserver 127.0.0.1\n", ["127.0.0.1"]) is None
    assert "8.8.8.8" in tls_dane_resolver_problem("nameserver 8.8.8.8\n", ["127.0.0.1"])
    with pytest.raises(AnsibleFilterError, match="list of resolver addresses"):
        tls_dane_resolver_problem("nameserver 127.0.0.1\n", "127.0.0.1")
