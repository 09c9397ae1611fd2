#!/usr/bin/env bash
# build-busybox.sh [TARGET]: make sure a tiny busybox image exists (no python), for fast tests.
#
#   TARGET defaults to dtrun-local/busybox:latest.
#   Made offline from Debian's busybox-static package: a rootfs with /bin/busybox and a symlink
#   per applet (sh, echo, cat, sleep, ls, env, tar, ...), imported with `docker import`
#   (well under a second once the package is here).
set -euo pipefail

target=${1:-dtrun-local/busybox:latest}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
apt_log=/var/log/dtrun-apt.log
prog=build-busybox

say() { echo "$prog: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }

"$repo/scripts/ensure-docker"

if docker image inspect "$target" >/dev/null 2>&1; then
  say "$target already exists"
  exit 0
fi

t_start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/dtrun-busybox.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT

# The static busybox binary: the installed busybox-static package, else install it (root), else
# fetch the .deb without installing it (apt-get download needs no root).
busybox=
if dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
  busybox=/bin/busybox
elif [ "$(id -u)" -eq 0 ]; then
  say "installing busybox-static via apt (log: $apt_log) ..."
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
           --no-install-recommends busybox-static; } >>"$apt_log" 2>&1; then
    tail -n 20 "$apt_log" >&2 || true
    die "apt-get install busybox-static failed (see $apt_log)"
  fi
  busybox=/bin/busybox
else
  say "fetching busybox-static with apt-get download ..."
  (cd "$work" && apt-get download busybox-static >/dev/null) ||
    die "could not get busybox-static (apt-get download busybox-static failed)"
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/pkg"
  busybox=$work/pkg/bin/busybox
fi
[ -x "$busybox" ] || die "$busybox not found"
if ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked; the image needs the static one (busybox-static)"
fi

rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,var/tmp,home}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
chmod 700 "$rootfs/root"
cp "$busybox" "$rootfs/bin/busybox"
# One symlink per applet, all in /bin (PATH has it), plus /usr/bin/env for `#!/usr/bin/env` lines.
applets=$("$rootfs/bin/busybox" --list)
for a in $applets; do
  [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"
done
for a in sh echo cat sleep true false ls mkdir env; do
  [ -e "$rootfs/bin/$a" ] || die "busybox lacks the applet $a"
done
ln -s /bin/env "$rootfs/usr/bin/env"
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF

img_id=$(tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL dev.dtrun.base=1' \
    --change 'CMD ["sh"]' \
    - "$target")
size=$(docker image inspect -f '{{.Size}}' "$target")
say "built $target (${img_id#sha256:}, $((size / 1000)) kB) in $((SECONDS - t_start)) s"
