#!/bin/sh
# Builds, signs and verifies the example bundle (bundles/authentik) end to end:
# a fresh signing key under out/example/, a reproducible build, a signature,
# and two independent checks of it: rick-bundle verify and GnuPG's gpgv.
set -eu
cd "$(dirname "$0")/.."

out=out/example
version=${EXAMPLE_VERSION:-1.0.0}
# The bundle's createdAt and mtimes come from SOURCE_DATE_EPOCH when set,
# otherwise from the checkout's HEAD commit.

say() { printf '\n== %s\n' "$*"; }

say "building rick-bundle and the single-file installer (npm run build)"
npm run --silent build >/dev/null
rick() { node dist/cli/rick-bundle.js "$@"; }

rm -rf "$out"
mkdir -p "$out"

say "rick-bundle keygen (ed25519 key pair in $out/keys)"
rick keygen --name "rick example signing key" --out "$out/keys"

say "rick-bundle build bundles/authentik --version $version"
rick build bundles/authentik --version "$version" --out "$out"
bundle="$out/authentik-$version.tgz"
sha256sum "$bundle"

say "rebuilding: a second build must give the same bytes"
mkdir -p "$out/rebuild"
rick build bundles/authentik --version "$version" --out "$out/rebuild" >/dev/null
cmp "$bundle" "$out/rebuild/authentik-$version.tgz"
echo "identical: $(sha256sum <"$out/rebuild/authentik-$version.tgz" | cut -d' ' -f1)"

say "rick-bundle sign"
rick sign "$bundle" --key "$out/keys/signing-key.asc"

say "rick-bundle verify"
rick verify "$bundle" --keyring "$out/keys/signing-key.pub.asc"

say "gpgv (GnuPG checks the same signature)"
gnupghome=$(mktemp -d)
trap 'rm -rf "$gnupghome"' EXIT
gpg --homedir "$gnupghome" --batch --quiet --dearmor \
  --output "$out/keys/signing-key.gpg" "$out/keys/signing-key.pub.asc"
gpgv --keyring "$(pwd)/$out/keys/signing-key.gpg" "$bundle.sig" "$bundle"

say "contents of $bundle"
tar -tvzf "$bundle"
echo
echo "example: built, signed and verified $bundle (signature $bundle.sig)"
