"""A real PostgreSQL server for the tests of the PostgreSQL user database (issue 15).

One throwaway cluster per test session (bench/postgres.py), reached only through its Unix socket; each test
gets its own database. It needs Debian's ``postgresql`` package (scripts/setup.sh installs it) and psycopg 3
(requirements.txt).
"""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The unit tests' in-process module runner serves these tests too; the cluster helper is the benchmark's.
sys.path[:0] = [os.path.join(ROOT, "tests", "unit", "plugins", "modules"), os.path.join(ROOT, "bench")]

from postgres import ThrowawayPostgres  # noqa: E402


@pytest.fixture(scope="session")
def postgres_server():
    try:
        server = ThrowawayPostgres().start()
    except RuntimeError as error:
        pytest.fail(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_uri(postgres_server):
    """A fresh, empty database of its own for one test."""
    return postgres_server.uri(postgres_server.new_database())
