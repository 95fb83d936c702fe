#!/usr/bin/env bash
# Prepare this machine (Debian 12, as root) for the tests and the demo. Idempotent and quick on re-run:
#   - the Debian packages the tests use (podman with runc, debootstrap, sqlite3, swaks, openssl, php-cli
#     for the webmail template tests, chromium for the browser tests, postgresql for the PostgreSQL user database tests),
#   - /etc/containers/containers.conf (runc: crun fails here; no default ulimits; SYS_PTRACE),
#   - the Python venv .venv from requirements.txt,
#   - .collections/ansible_collections/sonla/mail -> this checkout (ansible.cfg's collections_path).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export DEBIAN_FRONTEND=noninteractive

log() { printf 'setup: %s\n' "$*"; }

# --- Debian packages -----------------------------------------------------------------------------
packages=(podman runc catatonit debootstrap uidmap slirp4netns fuse-overlayfs sqlite3 swaks openssl ca-certificates
  python3-venv debian-archive-keyring util-linux chromium chromium-driver php-cli postgresql
  prometheus)  # prometheus: promtool, which tests the alert rules (docs/monitoring.md)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$package")
  fi
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root to install: ${missing[*]}" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Only promtool is wanted: no Prometheus server on the test machine (a no-op where systemd is not running).
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
else
  log "Debian packages present"
fi

# --- podman configuration ------------------------------------------------------------------------
containers_conf=/etc/containers/containers.conf
wanted_conf='# Written by sonla.mail scripts/setup.sh: crun fails on these machines; runc works.
[containers]
default_ulimits = []
# Containers behave as a real host does for init scripts (issue 19), with an init as PID 1 (podman run --init; this
# podman ignores init = true here) and with SYS_PTRACE, added to the default set of podman: root may then read
# /proc/PID/exe of a daemon running as its own user, as on a host. Without it start-stop-daemon --exec finds no such
# daemon, and "restart" leaves node-exporter running and starts a second one, which fails. Without the init a stopped
# daemon stays a zombie that keeps its pid alive: every restart waits 35 s for it, and a failed start looks alive.
default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP", "SETGID",
                        "SETPCAP", "SETUID", "SYS_CHROOT", "SYS_PTRACE"]

[engine]
runtime = "runc"'
if [ "$(cat "$containers_conf" 2>/dev/null)" != "$wanted_conf" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    log "writing ${containers_conf}"
    mkdir -p /etc/containers
    printf '%s\n' "$wanted_conf" >"$containers_conf"
  else
    log "not root: leaving ${containers_conf} alone"
  fi
fi

# --- Python venv ---------------------------------------------------------------------------------
python="${SONLA_PYTHON:-python3}"
stamp=.venv/.requirements.sha256
wanted_hash="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted_hash" ]; then
  log "creating .venv from requirements.txt"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  printf '%s\n' "$wanted_hash" >"$stamp"
else
  log ".venv up to date"
fi

# --- the collection, resolvable as sonla.mail from this checkout --------------------------------
link=.collections/ansible_collections/sonla/mail
if [ "$(readlink "$link" 2>/dev/null)" != "../../.." ]; then
  log "linking ${link} -> ../../.."
  mkdir -p "$(dirname "$link")"
  rm -rf "$link"
  ln -s ../../.. "$link"
fi

# --- no stale copy of this collection where Ansible looks before .collections --------------------
# ansible-lint or `ansible-galaxy collection install` can leave one in ~/.ansible/collections; tools that
# search there first would test that old copy instead of this checkout.
stale="${HOME}/.ansible/collections/ansible_collections/sonla/mail"
if [ -e "$stale" ] && [ "$(readlink -f "$stale")" != "$root" ]; then
  log "removing ${stale}: a stale copy of this collection would shadow the checkout"
  rm -rf "$stale"
fi

log "done"
