#!/bin/sh
# Builds, signs and checksums every bundle of bundles/ for one release; the
# release workflow runs exactly this (npm run release:build), and so does a test.
#
#   scripts/release.sh --version 1.2.3 --key FILE [--out DIR] [--no-build]
#
# FILE is the armored private signing key; its passphrase, if any, is read by
# rick-bundle from the environment variable RICK_SIGNING_PASSPHRASE, never
# from an argument. DIR (default: release/) receives, for each bundle,
# <name>-<version>.tgz and its detached signature .sig, then bootstrap.sh,
# SHA256SUMS over all of them and its detached signature SHA256SUMS.sig.
# Each bundle is then checked by rick-bundle verify, as hosts read it.
#
# Each bundle is judged against bundles/<name>/policy.conf, the grant its
# hosts keep in /etc/rick/policy.d/<name>.conf: a release that needs more
# than that grant fails here (exit 14), instead of being held on every host.
set -eu
cd "$(dirname "$0")/.."

version=""
key=""
out="release"
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version="${2:?--version needs a value}"; shift 2 ;;
    --key) key="${2:?--key needs a file}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "release: unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -n "$version" ] || { echo "release: --version is required" >&2; exit 2; }
[ -n "$key" ] || { echo "release: --key is required" >&2; exit 2; }
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
  node dist/cli/rick-bundle.js build "$dir" --version "$version" --out "$out" --policy "$dir/policy.conf"
done
[ "$found" -eq 1 ] || { echo "release: no bundle in bundles/" >&2; exit 1; }

for tgz in "$out"/*.tgz; do
  node dist/cli/rick-bundle.js sign "$tgz" --key "$key"
done

# Every asset read back as hosts read it (rick-bundle verify: the keyring
# rules, the signature, the contents, the file name against the signed
# manifest), with the public half of the signing key, exported by GnuPG in a
# home of its own that is removed on exit.
gnupghome="$(mktemp -d)"
trap 'rm -rf "$gnupghome"' EXIT
GNUPGHOME="$gnupghome" gpg --batch --quiet --import "$key" 2>/dev/null ||
  { echo "release: GnuPG cannot read the signing key $key" >&2; exit 1; }
GNUPGHOME="$gnupghome" gpg --batch --armor --export >"$gnupghome/release.asc"
for tgz in "$out"/*.tgz; do
  node dist/cli/rick-bundle.js verify "$tgz" --keyring "$gnupghome/release.asc" >/dev/null
  echo "release: verified $(basename "$tgz") as hosts read it"
done
cp installer/bootstrap.sh "$out/bootstrap.sh"

(
  cd "$out"
  LC_ALL=C
  export LC_ALL
  # shellcheck disable=SC2035 # the names are ours: <name>-<version>.tgz[.sig]
  sha256sum *.tgz *.tgz.sig bootstrap.sh >SHA256SUMS
)
node dist/cli/rick-bundle.js sign "$out/SHA256SUMS" --key "$key"
echo "release: $version ready in $out"
ls -l "$out"
