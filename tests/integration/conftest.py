"""A real PostgreSQL server for the tests of the PostgreSQL user database (issue 15).

One throwaway cluster per test session, in a temporary folder, reached only through its Unix socket;
each test gets its own database. It needs Debian's ``postgresql`` package (scripts/setup.sh installs it)
and psycopg 3 (requirements.txt).
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from itertools import count

import pytest

# The unit tests' in-process module runner serves these tests too.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit", "plugins", "modules"))

_PORT = 5815
_databases = count()


def _as_postgres(command, **options):
    """Run a server command as the postgres user when we are root: PostgreSQL refuses to run as root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + command, check=True, capture_output=True, text=True, **options)


class PostgresServer:
    def __init__(self, socket_dir: str, superuser: str):
        self.socket_dir = socket_dir
        self.superuser = superuser

    def uri(self, database: str = "postgres", user: str | None = None) -> str:
        return f"postgresql:///{database}?host={self.socket_dir}&port={_PORT}&user={user or self.superuser}"

    def admin(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.uri(database), autocommit=True) as connection:
            connection.execute(sql)

    def new_database(self) -> str:
        name = f"sonla_mail_{next(_databases)}"
        self.admin(f"CREATE DATABASE {name}")
        return name


@pytest.fixture(scope="session")
def postgres_server():
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.fail("PostgreSQL is not installed: run scripts/setup.sh (Debian's postgresql package)")
    bindir = os.path.dirname(binaries[-1])
    folder = tempfile.mkdtemp(prefix="sonla-pg-")
    superuser = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = os.path.join(folder, "data")
    _as_postgres([f"{bindir}/initdb", "-D", data, "-U", superuser, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
    _as_postgres([f"{bindir}/pg_ctl", "-D", data, "-w", "-l", os.path.join(folder, "log"), "start", "-o",
                  f"-c listen_addresses='' -k {folder} -p {_PORT} -c fsync=off"])
    try:
        yield PostgresServer(folder, superuser)
    finally:
        _as_postgres([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_uri(postgres_server):
    """A fresh, empty database of its own for one test."""
    return postgres_server.uri(postgres_server.new_database())
