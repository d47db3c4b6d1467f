#!/bin/sh
# Everything the end-to-end suite needs on this machine, from a fresh one:
# debootstrap and systemd-nspawn, podman's quadlet generator (rick-bundle
# checks the units it builds), and the cached Debian 13 root of the test host.
set -eu
. "$(dirname "$0")/lib.sh"
need_root
say "this machine gets debootstrap, systemd-container, zstd and util-linux if missing;" \
  "apt upgrades the machine's own systemd to the version systemd-container needs"
say "the test host needs GIDs ${RICK_E2E_PG_CLIENTS_GID:-4711} and ${RICK_E2E_VALKEY_CLIENTS_GID:-4712}" \
  "free on this machine (RICK_E2E_PG_CLIENTS_GID, RICK_E2E_VALKEY_CLIENTS_GID choose others)"
say "the Debian 13 root is cached in $e2e_cache: about 10 minutes to build from nothing;" \
  "its key covers the package list and build script, not the archive's date:" \
  "delete $e2e_cache/trixie-minbase-*.tar.zst to take today's packages"
ensure_tools
say "podman's quadlet generator: $("$e2e_repo/scripts/fetch-quadlet.sh")"
"$e2e_repo/scripts/e2e/build-root.sh" >/dev/null
