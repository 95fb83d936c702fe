"""The versions sonla.mail.packages returns (issue 19): the roles choose configuration syntax and TLS parameter names
by them, so Debian's epochs, revisions and repackaging marks must not reach the comparisons."""

import pytest

from ansible_collections.sonla.mail.plugins.module_utils._packages import installed_versions, upstream_version


@pytest.mark.parametrize(("debian", "upstream"), [
    ("1:2.4.1+dfsg1-6", "2.4.1"),  # Dovecot on Debian 13
    ("1:2.3.19.1+dfsg1-2.1+deb12u1", "2.3.19.1"),  # Dovecot on Debian 12
    ("3.10.1-1", "3.10.1"),  # Postfix
    ("3.7.11-0+deb12u1", "3.7.11"),
    ("1.26.3-3+deb13u1", "1.26.3"),  # nginx
    ("2:8.4+96", "8.4"),  # php-fpm: Debian's default PHP
    ("0.18.0-1~bpo12+1", "0.18.0"),
    ("20230311", "20230311"),
    ("2.4", "2.4"),
])
def test_the_upstream_part_of_a_debian_version(debian, upstream):
    assert upstream_version(debian) == upstream


def test_a_version_not_starting_with_a_digit_is_kept_as_dpkg_gave_it():
    assert upstream_version("git20240101-1 ") == "git20240101-1"


def test_only_installed_packages_that_were_asked_for_are_returned():
    output = ("dovecot-core\tinstalled\t1:2.4.1+dfsg1-6\n"
              "nginx\tconfig-files\t1.26.3-3\n"  # removed, its configuration kept: not installed
              "postfix\tinstalled\t3.10.1-1\n"
              "libc6\tinstalled\t2.41-12\n"
              "a line dpkg-query never writes\n")
    assert installed_versions(output, ["dovecot-core", "nginx", "libc6:amd64"]) == {
        "dovecot-core": "2.4.1", "libc6": "2.41"}
