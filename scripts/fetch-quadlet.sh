#!/bin/sh
# Provides podman 5.4's quadlet generator from Debian 13's podman package,
# unpacked under .cache/podman (no install, nothing else on the machine
# changes). Prints the generator's path.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/.cache/podman"
bin="$dest/root/usr/libexec/podman/quadlet"
if [ ! -x "$bin" ]; then
  rm -rf "$dest/debs" "$dest/root"
  "$here/scripts/debian13-apt.sh" download "$dest/debs" podman
  dpkg -x "$dest"/debs/podman_*.deb "$dest/root"
fi
"$bin" -version >/dev/null
printf '%s\n' "$bin"
