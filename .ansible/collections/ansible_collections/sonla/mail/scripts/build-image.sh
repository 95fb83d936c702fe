#!/usr/bin/env bash
# Build the local Debian test image localhost/sonla-debian:<release> (trixie or bookworm).
#
# No container registry is reachable, so the image is made from Debian's own packages with
# debootstrap and imported into podman. An existing image is reused; flock keeps two concurrent
# callers (two molecule platforms, the demo and the tests) from building the same image twice.
set -euo pipefail

release="${1:-}"
case "$release" in
  trixie | bookworm) ;;
  *)
    echo "usage: $0 <trixie|bookworm>" >&2
    exit 2
    ;;
esac

image="localhost/sonla-debian:${release}"
mirror="${SONLA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${SONLA_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
lock_dir=/var/lock/sonla-mail
mkdir -p "$lock_dir"

exec 9>"${lock_dir}/build-image-${release}.lock"
flock 9

if podman image exists "$image"; then
  echo "build-image: reusing ${image}"
  exit 0
fi

echo "build-image: building ${image} with debootstrap from ${mirror} (a few minutes)"
root="$(mktemp -d "/var/tmp/sonla-debian-${release}.XXXXXX")"
trap 'rm -rf --one-file-system "$root"' EXIT

debootstrap --variant=minbase --include=python3,ca-certificates "$release" "$root" "$mirror"

# The same package sources the host uses (deb.debian.org through the machine's package proxy).
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: ${mirror}
Suites: ${release} ${release}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${security_mirror}
Suites: ${release}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# The package proxy may serve a dated snapshot; like the host, do not reject its Release files.
cat >"$root/etc/apt/apt.conf.d/99sonla-snapshot" <<'APTCONF'
Acquire::Check-Valid-Until "false";
Acquire::Languages "none";
APTCONF
# Services are started by Ansible handlers, not by package post-install scripts.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

tar --numeric-owner -C "$root" -c . |
  podman import --change 'CMD ["/bin/sleep", "infinity"]' - "$image"
echo "build-image: built ${image}"
