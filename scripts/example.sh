#!/bin/sh
# npm run example: the example bundle (bundles/authentik) from source to an
# installed host, offline and without root: a fresh signing key under
# out/example/, a reproducible build (built twice, compared byte for byte), a
# signature checked twice (rick-bundle verify and GnuPG's gpgv), then
# rick-install --root into the host tree out/example/host (granted, status,
# verify). Needs what scripts/setup.sh installs (GnuPG, podman's quadlet).
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

# The host side, offline: rick-install --root works on a tree instead of the
# running system (users and groups from its etc/, no systemctl). The tree gets
# what an operator provides: the infrastructure groups, the release key and
# the bundle's secrets file.
host="$out/host"
say "rick-install into an offline host tree ($host)"
mkdir -p "$host/etc/rick/keys" "$host/etc/rick/secrets"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$host/etc/passwd"
printf 'root:x:0:\npostgres-clients:x:4711:\nvalkey-clients:x:4712:\n' >"$host/etc/group"
cp "$out/keys/signing-key.pub.asc" "$host/etc/rick/keys/release.asc"
umask 077
printf 'authentik_db_password=example-db-password\nauthentik_valkey_password=example/valkey@password\nauthentik_secret_key=example-secret-key\n' \
  >"$host/etc/rick/secrets/authentik.env"
umask 022
install() { RICK_QUADLET=$(scripts/fetch-quadlet.sh) node dist/installer/rick-install.cjs "$@"; }
# A host grants each bundle only what it declares (docs/policy.md): --grant
# shows the needs beyond the grant and records them; --yes accepts without
# asking, as bootstrap.sh does for a first release.
install "$bundle" --root "$host" --grant --yes
say "the grant it recorded ($host/etc/rick/policy.d/authentik.conf)"
cat "$host/etc/rick/policy.d/authentik.conf"
say "rick-install status"
install status --root "$host"
say "rick-install verify (drift check)"
install verify --root "$host"
say "the server unit as the host sees it"
cat "$host/var/lib/rick/current/quadlet/authentik/authentik-server.container"

echo
echo "example: built, signed and verified $bundle (signature $bundle.sig)"
echo "example: installed it into $host (rick-install --root)"
