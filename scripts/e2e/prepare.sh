#!/bin/sh
# Everything the end-to-end suite needs on this machine, from a fresh one:
# debootstrap and systemd-nspawn, podman's quadlet generator (rick-bundle
# checks the units it builds), and the cached Debian 13 root of the test host.
set -eu
. "$(dirname "$0")/lib.sh"
need_root
ensure_tools
say "podman's quadlet generator: $("$e2e_repo/scripts/fetch-quadlet.sh")"
"$e2e_repo/scripts/e2e/build-root.sh" >/dev/null
