#!/bin/sh
# Compares a rebuilt release with the assets published for its tag, byte for
# byte: every file the rebuild wrote must be published with the same bytes,
# and every published asset must be rebuilt, except the signatures and
# SHA256SUMS (an OpenPGP signature carries its own time) and the index (the
# index job's). The reproduce workflow runs it; it needs gh (GH_TOKEN, GH_REPO).
#
#   scripts/reproduce-compare.sh TAG REBUILT_DIR
set -eu
tag="${1:?usage: reproduce-compare.sh TAG REBUILT_DIR}"
rebuilt="${2:?usage: reproduce-compare.sh TAG REBUILT_DIR}"
published="$(mktemp -d)"
trap 'rm -rf "$published"' EXIT
gh release download "$tag" --dir "$published"

status=0
for f in "$published"/*; do
  name="$(basename "$f")"
  case "$name" in
    *.sig | SHA256SUMS | index.json) continue ;;
  esac
  if [ ! -f "$rebuilt/$name" ]; then
    echo "reproduce: $name is published but was not rebuilt" >&2
    status=1
  elif cmp -s "$f" "$rebuilt/$name"; then
    echo "reproduce: $name: same bytes"
  else
    echo "reproduce: $name differs from the rebuild" >&2
    status=1
  fi
done
for f in "$rebuilt"/*; do
  name="$(basename "$f")"
  [ -f "$published/$name" ] || { echo "reproduce: $name was rebuilt but is not published" >&2; status=1; }
done
[ "$status" -eq 0 ] && echo "reproduce: $tag rebuilt from its tag, byte for byte"
exit "$status"
