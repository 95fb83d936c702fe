#!/usr/bin/env bash
# THE test command (CI runs it through .ci/run, as root, on a clean clone):
#   setup -> ruff -> yamllint -> ansible-lint (production) -> ansible-test sanity -> changelog lint
#   -> unit and integration tests -> every molecule scenario.
# Exits non-zero on the first failure. MOLECULE_SCENARIOS="a b" limits the scenarios run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

step "setup"
./scripts/setup.sh
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$root/.collections"
export PY_COLORS=0 ANSIBLE_FORCE_COLOR=0 NO_COLOR=1

step "ruff"
ruff check .

step "yamllint"
yamllint --strict .

step "ansible-lint (production profile)"
ansible-lint --profile production

step "ansible-test sanity"
./scripts/sanity.sh

step "changelog fragments"
antsibull-changelog lint

step "lint the demo inventory"
scripts/lint-inventory inventories/demo

step "unit and integration tests"
# promtool (Debian's prometheus, scripts/setup.sh) tests the alert rules; CI fails rather than skips without it.
SONLA_REQUIRE_PROMTOOL=1 python -m pytest -q -p no:cacheprovider tests/unit tests/integration

step "local test images"
./scripts/build-image.sh trixie
./scripts/build-image.sh bookworm

scenarios="${MOLECULE_SCENARIOS:-$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -rn1 basename | sort)}"
for scenario in $scenarios; do
  step "molecule test -s ${scenario}"
  scenario_started=$SECONDS
  molecule test -s "$scenario"
  echo "molecule scenario ${scenario} passed in $((SECONDS - scenario_started)) s"
done

step "all tests passed in $((SECONDS - started)) s"
