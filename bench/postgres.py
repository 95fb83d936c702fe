# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway PostgreSQL cluster in a temporary folder, reached only through its Unix socket (issue 15).

For the benchmark of the PostgreSQL user database (``bench/run.py --engine postgresql``) and the tests
against a real server (tests/integration/test_userdb_postgres.py). Needs Debian's ``postgresql`` package and psycopg 3.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from itertools import count


def _as_postgres(command: list[str]) -> None:
    """Run a server command as the postgres user when we are root: PostgreSQL refuses to run as root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(prefix + command, check=True, capture_output=True, text=True)


class ThrowawayPostgres:
    """``start()``, then ``new_database()`` for each fresh database, and ``stop()``, which deletes everything."""

    def __init__(self, port: int = 5815):
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            raise RuntimeError("PostgreSQL is not installed: run scripts/setup.sh (Debian's postgresql package)")
        self.bindir = os.path.dirname(binaries[-1])
        self.port = port
        self.superuser = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
        self.folder = tempfile.mkdtemp(prefix="sonla-pg-")
        self.data = os.path.join(self.folder, "data")
        self._numbers = count()

    def start(self) -> ThrowawayPostgres:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        _as_postgres([f"{self.bindir}/initdb", "-D", self.data, "-U", self.superuser, "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8"])
        _as_postgres([f"{self.bindir}/pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.folder, "log"), "start",
                      "-o", f"-c listen_addresses='' -k {self.folder} -p {self.port}"])
        return self

    def stop(self) -> None:
        _as_postgres([f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "immediate", "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)

    def uri(self, database: str = "postgres", user: str | None = None) -> str:
        return f"postgresql:///{database}?host={self.folder}&port={self.port}&user={user or self.superuser}"

    def admin(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.uri(database), autocommit=True) as connection:
            connection.execute(sql)

    def new_database(self) -> str:
        """A new, empty database; returns its name."""
        name = f"sonla_mail_{next(self._numbers)}"
        self.admin(f"CREATE DATABASE {name}")
        return name
