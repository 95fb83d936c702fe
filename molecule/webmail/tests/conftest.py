# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the webmail browser tests: the handoff file and Chromium (the container's are in molecule/shared)."""

from __future__ import annotations

import csv
import glob
import os
import shutil
import tempfile

import pytest

HOST_NAME = "mail.sonla.gov.vn"  # R3.1


def pytest_addoption(parser):
    parser.addoption("--handoff-dir", required=True, help="the mailboxes role's handoff folder (initial passwords)")
    parser.addoption("--artifacts", required=True, help="folder for the screenshots")


@pytest.fixture(scope="session")
def initial_passwords(request) -> dict[str, str]:
    """The one-time passwords the operator received (R6.1a), from the newest handoff files."""
    passwords = {}
    for path in sorted(glob.glob(os.path.join(request.config.getoption("--handoff-dir"), "*.csv"))):
        with open(path, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                passwords[row["address"]] = row["initial_password"]
    assert passwords, "no handoff file: the converge made no new account"
    return passwords


@pytest.fixture(scope="session")
def server_cert(host) -> str:
    return host.file("/etc/ssl/sonla-mail/mail.crt").content_string


@pytest.fixture(scope="session")
def artifacts(request) -> str:
    path = request.config.getoption("--artifacts")
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser(server_ip):
    """Headless Debian Chromium with a fresh profile; mail.sonla.gov.vn goes to the container."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="sonla-webmail-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--ignore-certificate-errors",  # the scenario's certificate is self-signed
        f"--user-data-dir={profile}",
        f"--host-resolver-rules=MAP {HOST_NAME} {server_ip}",
        "--window-size=1400,1000",
        "--lang=vi-VN",
    ):
        options.add_argument(argument)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
