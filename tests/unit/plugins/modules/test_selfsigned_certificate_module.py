"""sonla.mail.selfsigned_certificate (issue 19): the test and demo certificate of four roles in one module run each.
It makes a pair only where one is missing, keeps the key private, plans in check mode, and refuses bad names."""

import os
import subprocess

import pytest
from module_runner import run

from ansible_collections.sonla.mail.plugins.module_utils import _selfsigned
from ansible_collections.sonla.mail.plugins.modules import selfsigned_certificate

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the key is given to root")


def pair(tmp_path, **extra):
    return {"certificate": str(tmp_path / "ssl" / "mail.crt"), "private_key": str(tmp_path / "ssl" / "private" / "mail.key"),
            "names": ["mta-sts.sonla.gov.vn", "mta-sts.hanoi.gov.vn"], **extra}


def test_check_mode_plans_then_the_pair_is_made_once(tmp_path):
    args = pair(tmp_path)
    ok, plan = run(selfsigned_certificate, {**args, "_ansible_check_mode": True})
    assert ok and plan["changed"] and plan["action"] == "make" and not (tmp_path / "ssl").exists()

    ok, made = run(selfsigned_certificate, args)
    assert ok and made["changed"] and made["action"] == "make"
    assert os.stat(args["private_key"]).st_mode & 0o7777 == 0o600
    assert os.stat(args["certificate"]).st_mode & 0o7777 == 0o644
    text = subprocess.run(["openssl", "x509", "-in", args["certificate"], "-noout", "-subject", "-ext", "subjectAltName"],
                          capture_output=True, text=True, check=True).stdout
    assert "CN=mta-sts.sonla.gov.vn" in text.replace(" ", "")
    assert "DNS:mta-sts.sonla.gov.vn, DNS:mta-sts.hanoi.gov.vn" in text
    certificate = open(args["certificate"], "rb").read()

    ok, again = run(selfsigned_certificate, args)
    assert ok and not again["changed"] and again["action"] == "none"
    assert open(args["certificate"], "rb").read() == certificate  # an existing pair is kept


def test_a_readable_key_is_made_private_again_and_a_lost_key_makes_a_new_pair(tmp_path):
    args = pair(tmp_path)
    run(selfsigned_certificate, args)
    os.chmod(args["private_key"], 0o644)
    ok, plan = run(selfsigned_certificate, {**args, "_ansible_check_mode": True})
    assert ok and plan["changed"] and plan["action"] == "protect"
    assert os.stat(args["private_key"]).st_mode & 0o7777 == 0o644  # check mode changes nothing
    ok, fixed = run(selfsigned_certificate, args)
    assert ok and fixed["action"] == "protect" and os.stat(args["private_key"]).st_mode & 0o7777 == 0o600

    os.unlink(args["private_key"])
    certificate = open(args["certificate"], "rb").read()
    ok, remade = run(selfsigned_certificate, args)
    assert ok and remade["action"] == "make" and open(args["certificate"], "rb").read() != certificate


@pytest.mark.parametrize(("extra", "message"), [
    ({"names": []}, "give at least one DNS name"),
    ({"names": ["mail.sonla.gov.vn", "bad name;rm"]}, "'bad name;rm' not a DNS host name"),
    ({"days": 0}, "days: 0 must be at least 1"),
])
def test_bad_input_is_refused_and_nothing_is_made(tmp_path, extra, message):
    ok, result = run(selfsigned_certificate, pair(tmp_path, **extra))
    assert not ok and message in result["msg"] and not (tmp_path / "ssl").exists()


def test_the_plan_without_the_server():
    assert _selfsigned.plan(False, True, ("root", "root", 0o600)) == "make"
    assert _selfsigned.plan(True, False, None) == "make"
    assert _selfsigned.plan(True, True, ("root", "www-data", 0o640)) == "protect"
    assert _selfsigned.plan(True, True, ("root", "root", 0o600)) is None
