#!/bin/sh
# Everything a fresh Debian machine needs to build, sign and test rick:
# GnuPG (for gpgv interoperability), shellcheck and systemd-analyze (the
# installer's scripts and units are checked with them), the npm dependencies,
# and podman 5.4's quadlet generator unpacked under .cache (nothing else of
# podman is installed).
# Idempotent; run it from anywhere.
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v gpg >/dev/null 2>&1 || missing="$missing gnupg"
command -v gpgv >/dev/null 2>&1 || missing="$missing gpgv"
command -v dpkg >/dev/null 2>&1 || missing="$missing dpkg"
command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: please install:$missing (as root: apt-get install$missing)" >&2
    exit 1
  fi
  apt-get update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi

npm ci --no-audit --no-fund
npm run build
scripts/fetch-quadlet.sh >/dev/null
echo "setup: done"
