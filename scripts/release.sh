#!/bin/sh
# Builds every bundle of bundles/ for one release, with the release's
# LICENSE, third-party notices and SBOM; with --key, signs them too
# (scripts/release-sign.sh). The release workflow runs the build part
# (npm run release:build, no key anywhere near the toolchain) and signs in a
# separate job; a test runs both.
#
#   scripts/release.sh --version 1.2.3 [--out DIR] [--no-build] [--key FILE] [--require-pinned]
#
# DIR (default: release/) receives, for each bundle, <name>-<version>.tgz,
# then bootstrap.sh, LICENSE, THIRD-PARTY-NOTICES.txt and rick-install.cdx.json
# (the CycloneDX SBOM of the single-file installer, scripts/third-party.mjs).
# With --key FILE (the armored private signing key; its passphrase, if any,
# in RICK_SIGNING_PASSPHRASE), each bundle's .sig, SHA256SUMS and
# SHA256SUMS.sig follow, each read back as hosts read it.
#
# Each bundle is judged against bundles/<name>/policy.conf, the grant its
# hosts keep in /etc/rick/policy.d/<name>.conf: a release that needs more
# than that grant fails here (exit 14), instead of being held on every host.
# A bundle's time is its commit's (SOURCE_DATE_EPOCH, else the commit git
# names): a commit whose time cannot be read fails the build.
# With --require-pinned (the release workflow passes it), a bundle with an
# image that has no digest in its images.lock fails the build (exit 3,
# IMAGES_UNPINNED): the pin workflow writes the locks (docs/pinning.md).
set -eu
cd "$(dirname "$0")/.."

version=""
key=""
out="release"
build=1
pinned=0
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version="${2:?--version needs a value}"; shift 2 ;;
    --key) key="${2:?--key needs a file}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --no-build) build=0; shift ;;
    --require-pinned) pinned=1; shift ;;
    *) echo "release: unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -n "$version" ] || { echo "release: --version is required" >&2; exit 2; }
# A tag v1.2.3 names version 1.2.3.
version="${version#v}"

# From the sources at hand, so the bundles carry the installer of this commit,
# stamped with the release's version (a host never links an older installer
# than the one it has; --no-build: dist/ is already built, as in the tests).
if [ "$build" -eq 1 ]; then
  RICK_VERSION="$version" npm run --silent build
fi
[ -f dist/cli/rick-bundle.js ] || { echo "release: dist/ is not built (npm run build)" >&2; exit 2; }
[ -f dist/installer/rick-install.cjs ] || { echo "release: dist/installer/rick-install.cjs is not built" >&2; exit 2; }

mkdir -p "$out"
if [ -n "$(ls -A "$out")" ]; then
  echo "release: $out is not empty; refusing to mix releases" >&2
  exit 2
fi

found=0
for dir in bundles/*/; do
  [ -f "$dir/bundle.yaml" ] || continue
  found=1
  [ -f "$dir/policy.conf" ] ||
    { echo "release: ${dir}policy.conf is missing: the grant hosts keep for this bundle" >&2; exit 2; }
  if [ "$pinned" -eq 1 ]; then set -- --require-pinned; else set --; fi
  node dist/cli/rick-bundle.js build "$dir" --version "$version" --out "$out" --policy "$dir/policy.conf" "$@"
done
[ "$found" -eq 1 ] || { echo "release: no bundle in bundles/" >&2; exit 1; }

cp installer/bootstrap.sh "$out/bootstrap.sh"
cp LICENSE "$out/LICENSE"
node scripts/third-party.mjs --out "$out" --version "$version"

if [ -n "$key" ]; then
  scripts/release-sign.sh --key "$key" --dir "$out" --read-back
else
  echo "release: $version built, unsigned, in $out"
  ls -l "$out"
fi
