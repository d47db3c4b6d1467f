#!/bin/sh
# Runs inside the end-to-end test host: builds the stand-in image as the first
# REF, pushes it to the loopback registry under every REF, and removes them
# all from the host's image store, so that whatever runs them next pulls
# them from the registry.
#
#   publish-image.sh [--pad-mb N] [--command CMD] REF [REF…]     REF: localhost:PORT/NAME:TAG
#
# --command CMD: see build-image.sh (an image whose containers run `ak CMD …`).
set -eu
here=$(dirname "$0")
pad_mb=0
command=""
while :; do
  case "${1:-}" in
    --pad-mb) pad_mb=$2; shift 2 ;;
    --command) command=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: publish-image.sh [--pad-mb N] [--command CMD] REF [REF...]" >&2; exit 2; }
first=$1
sh "$here/build-image.sh" "$first" "$pad_mb" "$command"
for ref in "$@"; do
  [ "$ref" = "$first" ] || podman tag "$first" "$ref"
  podman push --quiet "$ref"
  echo "publish-image: pushed $ref ($(podman image inspect --format '{{.Digest}}' "$ref"))"
done
podman rmi "$@" >/dev/null
echo "publish-image: removed $* from the local image store"
