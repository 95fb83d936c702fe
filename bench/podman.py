# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmarks' throwaway containers: commands on the host, scripts inside, a fresh container."""

from __future__ import annotations

import subprocess


def sh(*command: str, check: bool = True, input_: str | None = None) -> str:
    """A host command's standard output; its error's tail when it fails and ``check`` is set."""
    done = subprocess.run(command, capture_output=True, text=True, input=input_, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])}: {done.stderr.strip()[-1500:] or done.stdout[-1500:]}")
    return done.stdout


def inside(container: str, script: str, check: bool = True) -> str:
    return sh("podman", "exec", "-i", container, "sh", "-c", script, check=check)


def start(container: str, image: str, hostname: str = "mail.sonla.gov.vn") -> None:
    """A new container from ``image`` under this name, replacing any left by an earlier run."""
    sh("podman", "rm", "-f", container, check=False)
    # As the test containers run (molecule.yml, scripts/setup.sh): an init that reaps, as a host's does, and root
    # allowed to read another user's /proc/PID/exe, which start-stop-daemon --exec needs to find a daemon that runs
    # as its own user (docs/benchmarks.md, "Figures of 2026-12-03").
    sh("podman", "run", "-d", "--init", "--cap-add", "SYS_PTRACE", "--name", container, "--hostname", hostname,
       image, "/bin/sleep", "infinity")
