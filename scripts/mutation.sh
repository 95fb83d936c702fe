#!/usr/bin/env bash
# Mutation testing of the planning and validation code (issue 11, "Proof"). Run by hand, not in CI:
#   scripts/mutation.sh                  # all five modules of tests/mutation/targets.txt
#   scripts/mutation.sh _naming _password
# It creates its own venv (.cache/mutation-venv, mutmut pinned below, the project's .venv on its path), copies
# plugins/ and tests/ into a scratch tree .cache/mutation/<module>/ansible_collections/sonla/mail/ (the checkout is
# never written), runs mutmut there with one worker under `nice`, prints killed / survived / timeout per module and
# in total, and lists each survivor's diff in .cache/mutation/<module>/survivors.txt. Exits 0 whatever the score.
# _naming, _password and _mailbox_plan take 1-4 min each; _lifecycle and _inventory 15-20+ min each on a loaded
# 2-core machine (docs/quality.md, "Time"). MUTATION_BUDGET (seconds, default 1200) bounds each module.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

MUTMUT_VERSION=3.8.1
budget="${MUTATION_BUDGET:-1200}"   # seconds per module; mutmut is stopped there and the partial result reported
venv="$root/.cache/mutation-venv"
work="$root/.cache/mutation"
targets="$root/tests/mutation/targets.txt"

log() { printf 'mutation: %s\n' "$*" >&2; }

# --- the venv: mutmut pinned, the project's own packages (pytest, hypothesis, ansible-core) through a .pth ------
if [ ! -x .venv/bin/python ]; then
  log "no .venv: run scripts/setup.sh first"
  exit 1
fi
project_site="$(.venv/bin/python -c 'import os, site; print(os.path.realpath(site.getsitepackages()[0]))')"
if [ "$(cat "$venv/.mutmut-version" 2>/dev/null)" != "$MUTMUT_VERSION" ]; then
  log "creating $venv with mutmut $MUTMUT_VERSION"
  rm -rf "$venv"
  .venv/bin/python -m venv "$venv"
  "$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])' >"$venv/.site"
  printf '%s\n' "$project_site" >"$(cat "$venv/.site")/sonla-project-venv.pth"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "mutmut==$MUTMUT_VERSION"
  printf '%s\n' "$MUTMUT_VERSION" >"$venv/.mutmut-version"
fi
mutmut="$venv/bin/mutmut"

# --- which modules ---------------------------------------------------------------------------------------------
declare -A tests_of=()
order=()
while read -r module rest; do
  case "$module" in '' | '#'*) continue ;; esac
  tests_of[$module]="$rest"
  order+=("$module")
done <"$targets"
if (($#)); then
  for module in "$@"; do
    [ -n "${tests_of[$module]:-}" ] || { log "unknown module $module (see $targets)"; exit 1; }
  done
  order=("$@")
fi

toml_list() {  # the arguments as a TOML array of strings
  local out="" item
  for item in "$@"; do out+="${out:+, }\"$item\""; done
  printf '[%s]' "$out"
}

summary=()
total_killed=0 total_survived=0 total_timeout=0 total_other=0 total_all=0
started_all=$SECONDS

for module in "${order[@]}"; do
  started=$SECONDS
  scratch="$work/$module"
  collection="$scratch/ansible_collections/sonla/mail"
  rm -rf "$scratch"
  mkdir -p "$collection"
  # The tests import ansible_collections.sonla.mail...; mutmut derives its mutant names from the file's path
  # under the project root, so the scratch tree must be laid out as that package.
  tar -C "$root" --exclude=__pycache__ --exclude=.pytest_cache --exclude=.hypothesis -cf - plugins tests galaxy.yml meta \
    | tar -C "$collection" -xf -

  # shellcheck disable=SC2086  # the targets file holds globs, expanded here against the checkout
  read -r -a selected <<<"$(cd "$root" && echo ${tests_of[$module]})"
  prefixed=()
  for test in "${selected[@]}"; do
    [ -e "$root/$test" ] || { log "$module: no such test file $test"; exit 1; }
    prefixed+=("ansible_collections/sonla/mail/$test")
  done
  cat >"$scratch/pyproject.toml" <<TOML
[tool.mutmut]
source_paths = ["ansible_collections"]
only_mutate = ["ansible_collections/sonla/mail/plugins/module_utils/$module.py"]
pytest_add_cli_args_test_selection = $(toml_list "${prefixed[@]}")
pytest_add_cli_args = ["-p", "no:cacheprovider"]
use_git_change_detection = false
TOML

  log "$module: ${#selected[@]} test file(s), budget ${budget}s"
  status=0
  (cd "$scratch" && nice -n 10 timeout --signal=INT --kill-after=30 "$budget" \
    "$mutmut" run --max-children 1) >"$scratch/run.log" 2>&1 || status=$?
  if ((status == 124)); then
    log "$module: stopped at the ${budget}s budget; the counts below are partial"
  elif ((status != 0)); then
    log "$module: mutmut exited $status; see $scratch/run.log"
  fi

  read -r killed survived timeout other all < <(cd "$scratch" && "$venv/bin/python" "$root/tests/mutation/report.py")
  share="n/a"
  ((all > 0)) && share="$(awk -v k="$killed" -v t="$timeout" -v a="$all" 'BEGIN { printf "%.1f %%", 100 * (k + t) / a }')"
  summary+=("$(printf '%-14s %6d %7d %8d %8d %6d   %8s   %4ds' "$module" "$all" "$killed" "$survived" "$timeout" "$other" "$share" $((SECONDS - started)))")
  total_killed=$((total_killed + killed)) total_survived=$((total_survived + survived))
  total_timeout=$((total_timeout + timeout)) total_other=$((total_other + other)) total_all=$((total_all + all))
done

printf '\n%-14s %6s %7s %8s %8s %6s   %8s   %5s\n' module mutants killed survived timeout other killed% time
printf '%s\n' "${summary[@]}"
share="n/a"
((total_all > 0)) && share="$(awk -v k="$total_killed" -v t="$total_timeout" -v a="$total_all" 'BEGIN { printf "%.1f %%", 100 * (k + t) / a }')"
printf '%-14s %6d %7d %8d %8d %6d   %8s   %4ds\n' total "$total_all" "$total_killed" "$total_survived" \
  "$total_timeout" "$total_other" "$share" $((SECONDS - started_all))
printf '\n(killed%% counts timeouts as killed; "other" is no tests, suspicious, skipped or not checked. Survivors: %s/<module>/survivors.txt)\n' "$work"
exit 0
