#!/usr/bin/env bash
# ansible-test sanity over this checkout (scripts/test.sh runs it). ansible-test wants the collection under
# .../ansible_collections/sonla/mail/ as a real folder, so the tracked and new files are copied there first.
# It builds a virtual environment per test and fetches pip's bootstrap script from a host these machines do
# not reach: tests/sanity/get_pip_offline.py takes its place, installing pip from the index pip already uses.
# pslint is for PowerShell, which the collection has none of. pylint is left to ruff (scripts/test.sh), which
# lints all of the project's Python with its own rules; ansible-test's pylint profile forbids "_" for unused values.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
collection="$work/ansible_collections/sonla/mail"
mkdir -p "$collection"
git -C "$root" ls-files -z --cached --others --exclude-standard | (cd "$root" && tar --null -cf - -T -) |
  tar -C "$collection" -xf -

pip_version="$("$python" - <<'PY'
import pathlib, re, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", source.read_text()).group(1))
PY
)"
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
sed "s|@OUTER_PYTHON@|$python|" "$root/tests/sanity/get_pip_offline.py" >"$cache/get_pip_${pip_version//./_}.py"

cd "$collection"
PATH="$root/.venv/bin:$PATH" ansible-test sanity --python 3.11 --local --skip-test pslint --skip-test pylint "$@"
