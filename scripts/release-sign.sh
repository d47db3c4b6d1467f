#!/bin/sh
# Signs a release that scripts/release.sh built, with GnuPG alone, and reads
# every signature back as users and hosts do before anything is published.
# The release workflow runs it in a job of its own, on the build job's files,
# with nothing but GnuPG and this script beside the key: no npm package, no
# compiler. (The read-back of each bundle by rick-bundle, --read-back here,
# runs there in a later job with no key, on the public half this writes.)
#
#   scripts/release-sign.sh --key FILE --dir DIR [--expect-fingerprint FPR]
#       [--public-key FILE] [--read-back]
#
# FILE is the armored private release key (its passphrase, if any, in
# RICK_SIGNING_PASSPHRASE). Each DIR/*.tgz gets a binary detached signature
# .sig; then SHA256SUMS over every file of DIR and its .sig; then the checks
# docs/feeds.md tells users to run: gpgv of SHA256SUMS.sig and of each
# bundle's .sig against the public half of the key, `sha256sum -c`, and
# bootstrap.sh equal to installer/bootstrap.sh of this checkout. With
# --expect-fingerprint, a key that is not that one is refused before anything
# is signed (a wrong secret publishes nothing). --public-key writes the
# public half (armored) to FILE, outside DIR. --read-back also reads each
# bundle back with `rick-bundle verify` (the keyring rules, the contents, the
# file name against the signed manifest; needs dist/).
set -eu
cd "$(dirname "$0")/.."

key=""
dir=""
expect=""
public=""
read_back=0
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key="${2:?--key needs a file}"; shift 2 ;;
    --dir) dir="${2:?--dir needs a directory}"; shift 2 ;;
    --expect-fingerprint) expect="${2:?--expect-fingerprint needs a fingerprint}"; shift 2 ;;
    --public-key) public="${2:?--public-key needs a file}"; shift 2 ;;
    --read-back) read_back=1; shift ;;
    *) echo "release-sign: unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -n "$key" ] || { echo "release-sign: --key is required" >&2; exit 2; }
[ -n "$dir" ] || { echo "release-sign: --dir is required" >&2; exit 2; }
if [ "$read_back" -eq 1 ] && [ ! -f dist/cli/rick-bundle.js ]; then
  echo "release-sign: --read-back needs dist/ (npm run build)" >&2
  exit 2
fi
ls "$dir"/*.tgz >/dev/null 2>&1 || { echo "release-sign: no bundle (*.tgz) in $dir" >&2; exit 2; }
for f in "$dir"/*.sig "$dir/SHA256SUMS"; do
  [ -e "$f" ] && { echo "release-sign: $f exists: $dir is signed already" >&2; exit 2; }
done
[ -f "$dir/bootstrap.sh" ] || { echo "release-sign: $dir/bootstrap.sh is missing" >&2; exit 2; }
cmp -s "$dir/bootstrap.sh" installer/bootstrap.sh ||
  { echo "release-sign: $dir/bootstrap.sh is not installer/bootstrap.sh of this checkout" >&2; exit 1; }

# The public half, exported by GnuPG in a home of its own removed on exit.
gnupghome="$(mktemp -d)"
trap 'rm -rf "$gnupghome"' EXIT
GNUPGHOME="$gnupghome" gpg --batch --quiet --import "$key" 2>/dev/null ||
  { echo "release-sign: GnuPG cannot read the signing key $key" >&2; exit 1; }
GNUPGHOME="$gnupghome" gpg --batch --armor --export >"$gnupghome/release.asc"
GNUPGHOME="$gnupghome" gpg --batch --export >"$gnupghome/release.gpg"
fingerprint="$(GNUPGHOME="$gnupghome" gpg --batch --with-colons --fingerprint | awk -F: '$1 == "fpr" { print $10; exit }')"
if [ -n "$expect" ]; then
  want="$(printf '%s' "$expect" | tr -d ' ' | tr 'a-f' 'A-F')"
  [ "$fingerprint" = "$want" ] ||
    { echo "release-sign: the key is $fingerprint, not the expected $want; nothing signed" >&2; exit 1; }
fi

# A binary detached signature, as `rick-bundle sign` writes; the passphrase
# goes to GnuPG on a pipe, never on a command line.
sign() {
  printf '%s' "${RICK_SIGNING_PASSPHRASE:-}" |
    GNUPGHOME="$gnupghome" gpg --batch --quiet --yes --pinentry-mode loopback --passphrase-fd 0 \
      --detach-sign --output "$1.sig" "$1" 2>"$gnupghome/sign.log" ||
    { cat "$gnupghome/sign.log" >&2; echo "release-sign: GnuPG cannot sign $1" >&2; exit 1; }
}
for tgz in "$dir"/*.tgz; do
  sign "$tgz"
done
if [ "$read_back" -eq 1 ]; then
  for tgz in "$dir"/*.tgz; do
    node dist/cli/rick-bundle.js verify "$tgz" --keyring "$gnupghome/release.asc" >/dev/null
    echo "release-sign: verified $(basename "$tgz") as hosts read it"
  done
fi
(
  cd "$dir"
  LC_ALL=C
  export LC_ALL
  # Every file of the release, in one sorted list.
  find . -maxdepth 1 -type f -printf '%f\n' | sort |
    while IFS= read -r f; do sha256sum "$f"; done >"$gnupghome/SHA256SUMS"
)
mv "$gnupghome/SHA256SUMS" "$dir/SHA256SUMS"
sign "$dir/SHA256SUMS"

# As a user checks it (docs/feeds.md), before any of it is uploaded.
gpgv --keyring "$gnupghome/release.gpg" "$dir/SHA256SUMS.sig" "$dir/SHA256SUMS" 2>"$gnupghome/gpgv.log" ||
  { cat "$gnupghome/gpgv.log" >&2; echo "release-sign: gpgv refuses SHA256SUMS.sig" >&2; exit 1; }
(cd "$dir" && sha256sum --quiet -c SHA256SUMS) ||
  { echo "release-sign: SHA256SUMS does not match the files" >&2; exit 1; }
grep -q '  bootstrap.sh$' "$dir/SHA256SUMS" ||
  { echo "release-sign: SHA256SUMS does not list bootstrap.sh" >&2; exit 1; }
for tgz in "$dir"/*.tgz; do
  gpgv --keyring "$gnupghome/release.gpg" "$tgz.sig" "$tgz" 2>"$gnupghome/gpgv.log" ||
    { cat "$gnupghome/gpgv.log" >&2; echo "release-sign: gpgv refuses $tgz.sig" >&2; exit 1; }
done
[ -z "$public" ] || cp "$gnupghome/release.asc" "$public"
echo "release-sign: signed by $fingerprint; SHA256SUMS, bootstrap.sh and every bundle checked with gpgv"
ls -l "$dir"
