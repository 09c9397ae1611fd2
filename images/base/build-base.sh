#!/usr/bin/env bash
# build-base.sh [TARGET]: make sure a local base image with python3 exists.
#
#   TARGET defaults to dtrun-local/base:bookworm.
#   1. TARGET exists                      -> exit 0
#   2. `docker pull python:3.11-slim-bookworm` works (60 s at most) -> re-tag it as TARGET
#   3. otherwise (no registry, the normal case offline): debootstrap a minimal Debian bookworm with
#      python3, venv, pip and CA certificates from the Debian mirror this host's apt uses, and
#      `docker import` it as TARGET (about a minute, about 150 MB).
#
# Environment:
#   DTRUN_DEBIAN_MIRROR   mirror to debootstrap from (default: the one in /etc/apt, else deb.debian.org)
#   DTRUN_BASE_PULL=0     skip the registry attempt
#   DTRUN_BASE_PULL_IMAGE image to try to pull (default python:3.11-slim-bookworm)
#   TMPDIR                where the temporary rootfs goes (default /var/tmp)
set -euo pipefail

target=${1:-dtrun-local/base:bookworm}
suite=bookworm
pull_image=${DTRUN_BASE_PULL_IMAGE:-python:3.11-slim-bookworm}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
apt_log=/var/log/dtrun-apt.log
prog=build-base

say() { echo "$prog: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }

"$repo/scripts/ensure-docker"

if docker image inspect "$target" >/dev/null 2>&1; then
  say "$target already exists"
  exit 0
fi

# One builder per target at a time; the loser of the race finds the image made.
lock_dir=${TMPDIR:-/tmp}
exec 9>"$lock_dir/dtrun-build-base.$(printf '%s' "$target" | tr -c 'A-Za-z0-9._-' '_').lock"
flock 9
if docker image inspect "$target" >/dev/null 2>&1; then
  say "$target already exists (made by a concurrent build)"
  exit 0
fi

t_start=$SECONDS

# --- 1. a registry, if one answers ---------------------------------------------------------------
if [ "${DTRUN_BASE_PULL:-1}" != 0 ]; then
  say "trying: docker pull $pull_image (60 s at most) ..."
  if timeout 60 docker pull -q "$pull_image" >/dev/null 2>&1; then
    # Re-tag, adding our label when the (legacy, offline) builder can: FROM a local image needs no
    # registry. Fall back to a plain tag.
    if ! printf 'FROM %s\nLABEL dev.dtrun.base=1\n' "$pull_image" |
         DOCKER_BUILDKIT=0 docker build -q -t "$target" - >/dev/null 2>&1; then
      docker tag "$pull_image" "$target"
    fi
    say "pulled $pull_image and tagged it $target ($((SECONDS - t_start)) s)"
    exit 0
  fi
  say "pull failed (no registry reachable): building $target offline with debootstrap"
fi

# --- 2. offline: debootstrap + docker import ------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "debootstrap needs root; run as root, or make $target elsewhere and" \
  "load it (docker load), or set DTRUN_BASE_IMAGE to an image you have."

apt_install() {
  say "installing $* via apt (log: $apt_log) ..."
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
           --no-install-recommends "$@"; } >>"$apt_log" 2>&1; then
    tail -n 20 "$apt_log" >&2 || true
    die "apt-get install $* failed (see $apt_log)"
  fi
}
command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap

# The Debian mirror this host's apt uses. deb822 (*.sources) first, then classic sources.list.
# Security and deb-src entries are skipped; the first stanza naming suite "$suite" wins, else the
# first plain Debian entry.
find_mirror() {
  local f
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    awk -v want="$suite" '
      function flush() {
        if (uris != "" && types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no" && suites !~ /-security/) {
          split(uris, u, /[ \t]+/)
          if (best == "" && (" " suites " ") ~ (" " want " ")) best = u[1]
          if (any == "") any = u[1]
        }
        uris = types = suites = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "uris:"    { sub(/^[^:]*:[ \t]*/, ""); uris = $0 }
      tolower($1) == "types:"   { sub(/^[^:]*:[ \t]*/, ""); types = $0 }
      tolower($1) == "suites:"  { sub(/^[^:]*:[ \t]*/, ""); suites = $0 }
      tolower($1) == "enabled:" { sub(/^[^:]*:[ \t]*/, ""); enabled = tolower($0) }
      END { flush(); print (best != "" ? best : any) }
    ' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI suite components...
    sed -E -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
      awk '$1 == "deb" && $3 !~ /-security/ { print $2 }'
  done
}
mirror=${DTRUN_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(find_mirror | grep -E '^(https?|file|ftp)://' | grep -v -e security -e '^$' | head -n 1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}
# The security archive for the image's apt, when the host uses one on the same server.
security=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
             2>/dev/null | sed 's/#.*//' | grep -oE 'https?://[^ ]*debian-security' | head -n 1 || true)

work=$(mktemp -d "${TMPDIR:-/var/tmp}/dtrun-base.XXXXXX")
rootfs=$work/rootfs
cleanup() {
  # debootstrap mounts /proc, /sys (and may bind /dev) inside the rootfs; if it died mid-way they
  # may still be mounted. Unmount them (deepest first) before deleting anything, and never let rm
  # cross into another filesystem.
  local m
  if [ -d "$rootfs" ]; then
    awk -v r="$rootfs" 'index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# python-is-python3: `python` works too, as in the python:3.11-slim image.
packages=python3,python3-venv,python3-pip,ca-certificates,python-is-python3
say "debootstrap --variant=minbase --include=$packages $suite $rootfs $mirror"
t_deboot=$SECONDS
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" \
       >"$work/debootstrap.log" 2>&1; then
  tail -n 30 "$work/debootstrap.log" >&2 || true
  if [ -f "$rootfs/debootstrap/debootstrap.log" ]; then
    tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
  fi
  die "debootstrap failed (mirror $mirror)"
fi
say "debootstrap done ($((SECONDS - t_deboot)) s)"

# apt inside the image: the same mirror, plus updates and security.
{
  echo "deb $mirror $suite main"
  echo "deb $mirror $suite-updates main"
  if [ -n "$security" ]; then echo "deb $security $suite-security main"; fi
} >"$rootfs/etc/apt/sources.list"

# Slim it down: no apt lists/caches, docs or man pages (as in Docker's official Debian images).
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
       "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/archives/partial/* \
       "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
       "$rootfs"/tmp/* "$rootfs"/root/.cache
find "$rootfs" -name __pycache__ -prune -exec rm -rf {} +
# A container image is its own environment: let `pip install` work outside a venv as it does in
# the python:3.11-slim image (Debian's PEP 668 marker would refuse it).
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
# Docker provides these at run time.
: >"$rootfs/etc/hostname"
rm -f "$rootfs/etc/resolv.conf"

changes=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'ENV LANG=C.UTF-8'
  --change 'CMD ["bash"]'
)
do_import() { tar --numeric-owner -C "$rootfs" -c . | docker import "$@" - "$target"; }
say "docker import -> $target"
if ! img_id=$(do_import "${changes[@]}" --change 'LABEL dev.dtrun.base=1' 2>"$work/import.err"); then
  if grep -qi label "$work/import.err"; then
    say "this docker import does not take LABEL; importing without the label"
    img_id=$(do_import "${changes[@]}")
  else
    cat "$work/import.err" >&2
    die "docker import failed"
  fi
fi
size=$(docker image inspect -f '{{.Size}}' "$target")
say "built $target (${img_id#sha256:}, $((size / 1000000)) MB) in $((SECONDS - t_start)) s from $mirror"
