#!/bin/sh
# Brings the signed release index up to date with the repository, in one
# run: every bundle of every GitHub release listed, the yanks and rollouts of
# release-index.yaml applied (scripts/index-plan.mjs plans the steps from that
# state, never from what started the run), and the result signed with the
# current time. The index goes on the newest stable release, which then
# becomes the latest, so that
# https://github.com/OWNER/NAME/releases/latest/download/index.json serves it.
# The index workflow runs it (after a release, on a change of
# release-index.yaml, daily and by hand); it needs gh (GH_TOKEN, GH_REPO) and
# rick-bundle's dist/.
#
#   scripts/index-publish.sh --key FILE [--keyring FILE] [--state FILE] [--out DIR] [--upload]
#
# FILE is the armored private index key (its passphrase, if any, in
# RICK_SIGNING_PASSPHRASE); --keyring, the public keys that may have signed
# the index published now (default: the index key itself; give the previous
# key once when the index key changes). --state defaults to
# release-index.yaml. RICK_ROLLOUT (e.g. 0h:5,24h:50,72h:100) sets the waves
# of newly listed releases. DIR (default: index/) receives index.json and
# index.json.sig. Prints `latest=<tag>` (the release that carries the index) last.
set -eu
cd "$(dirname "$0")/.."

key=""
keyring=""
state="release-index.yaml"
out="index"
upload=0
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key="${2:?--key needs a file}"; shift 2 ;;
    --keyring) keyring="${2:?--keyring needs a file}"; shift 2 ;;
    --state) state="${2:?--state needs a file}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --upload) upload=1; shift ;;
    *) echo "index-publish: unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -n "$key" ] || { echo "index-publish: --key is required" >&2; exit 2; }
[ -n "${GH_REPO:-}" ] || { echo "index-publish: GH_REPO (owner/name) is required" >&2; exit 2; }
[ -f "$state" ] || { echo "index-publish: $state is missing" >&2; exit 2; }
[ -f dist/cli/rick-bundle.js ] || { echo "index-publish: dist/ is not built" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A missing latest release (404) starts a new index; any other failure stops
# here, since an index started afresh would forget every yank.
if current="$(gh api "repos/$GH_REPO/releases/latest" --jq .tag_name 2>"$work/error")"; then
  :
elif grep -q 'HTTP 404' "$work/error"; then
  current=""
else
  cat "$work/error" >&2
  exit 1
fi

mkdir -p "$work/step0"
previous=""
if [ -n "$current" ] && gh release view "$current" --json assets --jq '.assets[].name' | grep -qx index.json; then
  gh release download "$current" --pattern index.json --pattern index.json.sig --dir "$work/step0"
  previous="$work/step0/index.json"
  echo "index-publish: from the index of release $current"
else
  echo "index-publish: ${current:-no release} has no index.json yet: starting a new index"
fi

gh api --paginate "repos/$GH_REPO/releases" \
  --jq '.[] | {tag: .tag_name, prerelease: .prerelease, draft: .draft, assets: [.assets[].name]}' \
  >"$work/releases.jsonl"
set -- --releases "$work/releases.jsonl" --state "$state" --downloads "$work/downloads" --out "$work/plan"
[ -z "$previous" ] || set -- "$@" --previous "$previous"
[ -z "${RICK_ROLLOUT:-}" ] || set -- "$@" --waves "$RICK_ROLLOUT"
node scripts/index-plan.mjs "$@"
target="$(cat "$work/plan/target")"
if [ -z "$target" ]; then
  # Prereleases only: hosts on the stable channel have nothing to follow yet,
  # and releases/latest names no release to carry an index.
  echo "index-publish: no stable release yet: no index published"
  echo "latest="
  exit 0
fi

n=0
for step in "$work"/plan/*.args; do
  n=$((n + 1))
  name="$(basename "$step" .args)"
  if [ -f "$work/plan/$name.download" ]; then
    tag="$(head -n 1 "$work/plan/$name.download")"
    mkdir -p "$work/downloads/$tag"
    tail -n +2 "$work/plan/$name.download" | while IFS= read -r asset; do
      gh release download "$tag" --pattern "$asset" --dir "$work/downloads/$tag"
    done
  fi
  set --
  while IFS= read -r arg; do set -- "$@" "$arg"; done <"$step"
  mkdir -p "$work/step$n"
  if [ -n "$previous" ]; then
    # The first step checks the published index against --keyring; each
    # later one starts from the step before, signed by the index key.
    if [ "$n" -eq 1 ] && [ -n "$keyring" ]; then set -- "$@" --keyring "$keyring"; fi
    node dist/cli/rick-bundle.js index --key "$key" --out "$work/step$n" --previous "$previous" "$@"
  else
    node dist/cli/rick-bundle.js index --key "$key" --out "$work/step$n" --new "$@"
  fi
  previous="$work/step$n/index.json"
done

mkdir -p "$out"
cp "$previous" "$out/index.json"
cp "$previous.sig" "$out/index.json.sig"

if [ "$upload" -eq 1 ]; then
  gh release upload "$target" "$out/index.json" "$out/index.json.sig" --clobber
  echo "index-publish: index.json and index.json.sig now on release $target"
  if [ "$target" != "$current" ]; then
    gh release edit "$target" --latest
    echo "index-publish: $target is now the latest release"
  fi
fi
echo "latest=$target"
