#!/bin/sh
# Signs the next release index from the one the latest GitHub release carries:
# downloads index.json and index.json.sig from the latest release (none yet:
# a new index), runs `rick-bundle index` on them with the arguments after --,
# and with --upload puts the new pair in their place on that release, which
# https://github.com/OWNER/NAME/releases/latest/download/index.json serves.
# The release, index-resign and index-update workflows run it; it needs gh
# (GH_TOKEN, GH_REPO) and a built dist/.
#
#   scripts/index-publish.sh --key FILE [--out DIR] [--upload] -- [rick-bundle index options]
#
# FILE is the armored private signing key (its passphrase, if any, in
# RICK_SIGNING_PASSPHRASE). DIR (default: index/) receives index.json and
# index.json.sig. Prints `latest=<tag>` (empty without a release) last.
set -eu
cd "$(dirname "$0")/.."

key=""
out="index"
upload=0
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key="${2:?--key needs a file}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --upload) upload=1; shift ;;
    --) shift; break ;;
    *) echo "index-publish: unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -n "$key" ] || { echo "index-publish: --key is required" >&2; exit 2; }
[ -n "${GH_REPO:-}" ] || { echo "index-publish: GH_REPO (owner/name) is required" >&2; exit 2; }
[ -f dist/cli/rick-bundle.js ] || { echo "index-publish: dist/ is not built (npm run build)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A missing latest release (404) starts a new index; any other failure stops
# here, since an index started afresh would forget every yank.
if latest="$(gh api "repos/$GH_REPO/releases/latest" --jq .tag_name 2>"$work/error")"; then
  :
elif grep -q 'HTTP 404' "$work/error"; then
  latest=""
else
  cat "$work/error" >&2
  exit 1
fi

previous=""
if [ -n "$latest" ] && gh release view "$latest" --json assets --jq '.assets[].name' | grep -qx index.json; then
  gh release download "$latest" --pattern index.json --pattern index.json.sig --dir "$work"
  previous="$work/index.json"
  echo "index-publish: from the index of release $latest"
else
  echo "index-publish: ${latest:-no release} has no index.json yet: starting a new index"
fi

mkdir -p "$out"
if [ -n "$previous" ]; then
  node dist/cli/rick-bundle.js index --key "$key" --out "$out" --previous "$previous" "$@"
else
  node dist/cli/rick-bundle.js index --key "$key" --out "$out" --new "$@"
fi

if [ "$upload" -eq 1 ]; then
  [ -n "$latest" ] || { echo "index-publish: no release to put the index on" >&2; exit 1; }
  gh release upload "$latest" "$out/index.json" "$out/index.json.sig" --clobber
  echo "index-publish: index.json and index.json.sig now on release $latest"
fi
echo "latest=$latest"
