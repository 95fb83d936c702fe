#!/usr/bin/env bash
# The benchmark of docs/benchmarks.md in one command (about an hour on 2 cores):
#   scripts/bench.sh                    # converge figures at 1,000/10,000/50,000 people, loop baseline, mail figures
#   scripts/bench.sh --sizes 1000       # any bench/run.py option; SONLA_BENCH_MAIL=0 skips the mail part
# Needs scripts/setup.sh (venv, podman, the Debian image) and GNU time (Debian package "time").
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${SONLA_PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
if [ ! -x /usr/bin/time ]; then
  echo "bench: GNU time is missing: apt-get install time" >&2
  exit 1
fi

"$python" bench/run.py --python "$python" "$@"
if [ "${SONLA_BENCH_MAIL:-1}" != 0 ]; then
  if command -v podman >/dev/null && podman image exists localhost/sonla-debian:bookworm; then
    "$python" bench/mail.py --python "$python"
  else
    echo "mail figures: not measured: podman or localhost/sonla-debian:bookworm missing (scripts/build-image.sh bookworm)"
  fi
fi
