#!/bin/sh
# Start sshd (key auth only; the key comes in as $AUTHORIZED_KEY) and dockerd in the foreground.
set -eu
if [ -n "${AUTHORIZED_KEY:-}" ]; then
  printf '%s\n' "$AUTHORIZED_KEY" > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi
ssh-keygen -A >/dev/null
/usr/sbin/sshd -o PasswordAuthentication=no -o PermitRootLogin=prohibit-password
# cgroup v1 hosts: without --privileged the hierarchies are mounted read-only. Mount each again,
# writable, over the read-only one (with a private cgroup namespace its root is this container's).
if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
  for dir in /sys/fs/cgroup/*/; do
    name=$(basename "$dir")
    case "$name" in systemd) opts=none,name=systemd ;; *) opts=$(echo "$name" | tr -d ' ') ;; esac
    umount "$dir" && mount -t cgroup -o "rw,nosuid,nodev,noexec,$opts" cgroup "$dir"
  done
fi
exec dockerd --host=tcp://0.0.0.0:2375 --host=unix:///var/run/docker.sock --tls=false \
  --iptables=false --ip-masq=false "$@"
