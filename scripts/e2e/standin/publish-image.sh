#!/bin/sh
# Runs inside the end-to-end test host: builds the stand-in image as the first
# REF, pushes it to the loopback registry under every REF, and removes them
# all from the host's image store, so that whatever runs them next pulls
# them from the registry.
#
#   publish-image.sh [--pad-mb N] REF [REF…]     REF: localhost:PORT/NAME:TAG
set -eu
here=$(dirname "$0")
pad_mb=0
if [ "${1:-}" = --pad-mb ]; then pad_mb=$2; shift 2; fi
[ $# -ge 1 ] || { echo "usage: publish-image.sh [--pad-mb N] REF [REF...]" >&2; exit 2; }
first=$1
sh "$here/build-image.sh" "$first" "$pad_mb"
for ref in "$@"; do
  [ "$ref" = "$first" ] || podman tag "$first" "$ref"
  podman push --quiet "$ref"
  echo "publish-image: pushed $ref ($(podman image inspect --format '{{.Digest}}' "$ref"))"
done
podman rmi "$@" >/dev/null
echo "publish-image: removed $* from the local image store"
