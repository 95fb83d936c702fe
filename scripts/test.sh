#!/usr/bin/env bash
# THE test command (CI runs it through .ci/run, as root, on a clean clone):
#   setup -> ruff -> yamllint -> ansible-lint (production) -> ansible-test sanity -> changelog lint
#   -> unit and integration tests -> every molecule scenario.
# Exits non-zero on the first failure (the molecule scenarios all run, then any failure fails the command).
# MOLECULE_SCENARIOS="a b" limits the scenarios run; MOLECULE_JOBS=1 runs them one at a time.
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

# Three scenarios at a time (MOLECULE_JOBS): each spends much of its time waiting on apt, daemons, browsers and
# timeouts, so three share the 2 cores (two at a time took 58 minutes in CI). The longest go first, so that the
# lanes end together. Each scenario's output is printed whole when it ends, followed by its result and time.
all_scenarios="$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -rn1 basename | sort)"
longest_first="scaleout hygiene webmail default lifecycle backup"
ordered="$(for s in $longest_first; do grep -qx "$s" <<<"$all_scenarios" && echo "$s"; done
           grep -vxF "$(printf '%s\n' $longest_first)" <<<"$all_scenarios" || true)"
scenarios="${MOLECULE_SCENARIOS:-$ordered}"
logs="$(mktemp -d /tmp/sonla-molecule-logs.XXXXXX)"
step "molecule test, ${MOLECULE_JOBS:-3} scenarios at a time: $(echo $scenarios)"
export logs
printf '%s\n' $scenarios | xargs -P "${MOLECULE_JOBS:-3}" -I{} bash -c '
  scenario={}; started=$SECONDS
  if molecule test -s "$scenario" >"$logs/$scenario.log" 2>&1; then result=passed; else result=FAILED; fi
  { printf "\n==> molecule test -s %s\n" "$scenario"; cat "$logs/$scenario.log"
    echo "molecule scenario $scenario $result in $((SECONDS - started)) s"; } | flock "$logs/.print" cat
  [ "$result" = passed ]' || { echo "a molecule scenario failed (see its output above)" >&2; exit 1; }

step "all tests passed in $((SECONDS - started)) s"
