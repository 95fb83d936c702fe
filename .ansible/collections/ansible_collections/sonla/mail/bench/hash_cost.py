#!/usr/bin/env python3
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measure the cost of Dovecot password schemes on this machine (figures for docs/passwords.md).

Usage: python bench/hash_cost.py [--seconds 1.0]

For each scheme, prints the median cost of creating one hash and of checking one password, and
what creating 50,000 hashes (a whole province's initial accounts) would take on one core.
SHA512-CRYPT is measured through the stdlib ``crypt`` module (deprecated, gone in Python 3.13):
only this script uses it, for comparison.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plugins", "module_utils"))

import _password

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt
    except ImportError:  # Python 3.13+
        crypt = None

ACCOUNTS = 50_000
PASSWORD = "Xq7#mK2p@Rt9vW4z"  # 16 characters, like a generated one


def _sha512_crypt():
    salt = crypt.mksalt(crypt.METHOD_SHA512, rounds=5000)

    def create():
        return "{SHA512-CRYPT}" + crypt.crypt(PASSWORD, salt)

    stored = create()[len("{SHA512-CRYPT}"):]

    def check():
        return crypt.crypt(PASSWORD, stored) == stored

    return create, check


def _scheme(create):
    stored = create(PASSWORD)
    return (lambda: create(PASSWORD)), (lambda: _password.verify_password(PASSWORD, stored))


def _median_seconds(func, budget):
    """Median wall time of ``func`` over repeated batches lasting about ``budget`` seconds."""
    func()
    start = time.perf_counter()
    func()
    once = max(time.perf_counter() - start, 1e-7)
    batch = max(1, int(0.05 / once))
    samples = []
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline or len(samples) < 3:
        start = time.perf_counter()
        for _ in range(batch):
            func()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


def _human(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.0f} min"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per measurement")
    args = parser.parse_args()

    schemes = [("SSHA512 (hash_initial)", *_scheme(_password.hash_initial))]
    if crypt is not None:
        schemes.append(("SHA512-CRYPT, 5000 rounds", *_sha512_crypt()))
    schemes.append(("BLF-CRYPT, cost 10 (hash_chosen)", *_scheme(lambda p: _password.hash_chosen(p, cost=10))))
    schemes.append(("BLF-CRYPT, cost 12", *_scheme(lambda p: _password.hash_chosen(p, cost=12))))

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print()
    print(f"| scheme | create one | check one | create {ACCOUNTS:,} (one core) |")
    print("|---|---:|---:|---:|")
    for name, create, check in schemes:
        create_cost = _median_seconds(create, args.seconds)
        check_cost = _median_seconds(check, args.seconds)
        print(f"| {name} | {_human(create_cost)} | {_human(check_cost)} | {_human(create_cost * ACCOUNTS)} |")
    if crypt is None:
        print("\nSHA512-CRYPT skipped: the stdlib crypt module is not available in this Python.")


if __name__ == "__main__":
    main()
