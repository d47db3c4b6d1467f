#!/bin/sh
# Builds (or reuses) the Debian 13 root of the end-to-end test host and
# prints the path of its cached tarball. The tarball's name carries a hash of
# the package list and of this script, so a change to either rebuilds it.
# The archive is the one this machine's apt uses (scripts/debian13-apt.sh uri).
set -eu
. "$(dirname "$0")/lib.sh"
need_root
ensure_tools

list="$e2e_repo/scripts/e2e/host-packages.list"
packages=$(grep -v '^#' "$list" | grep -v '^$' | sort -u | paste -sd, -)
hash=$(cat "$list" "$0" | sha256sum | cut -c1-16)
tarball="$e2e_cache/trixie-minbase-$hash.tar.zst"

if [ -f "$tarball" ]; then
  say "reusing cached root $tarball"
  printf '%s\n' "$tarball"
  exit 0
fi

uri=$("$e2e_repo/scripts/debian13-apt.sh" uri)
mkdir -p "$e2e_cache"
work=$(mktemp -d "$e2e_cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
say "debootstrap trixie (minbase) from $uri with: $packages"
debootstrap --variant=minbase --include="$packages" \
  --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
  trixie "$work/root" "$uri" >&2
# A package cache and lists are dead weight in the tarball.
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*_Packages
say "packing $tarball"
tar --numeric-owner --xattrs --xattrs-include='*' --acls -C "$work/root" -cf - . \
  | zstd -q -T0 -3 -o "$work/root.tar.zst"
mv "$work/root.tar.zst" "$tarball"
# Older roots are never used again.
find "$e2e_cache" -maxdepth 1 -name 'trixie-minbase-*.tar.zst' ! -name "${tarball##*/}" -delete
say "cached root $tarball ($(du -h "$tarball" | cut -f1))"
printf '%s\n' "$tarball"
