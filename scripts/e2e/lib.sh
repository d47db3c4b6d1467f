# Shared helpers for the end-to-end test host scripts (sourced, POSIX sh).
# Every script says what it does on stderr, prefixed with its name, so a CI
# log shows each step of building and booting the test host.

e2e_repo=$(cd "$(dirname "$0")/../.." && pwd)
# The cache lives outside the checkout so that repeated runs on the same
# machine, even from fresh clones, reuse the debootstrapped root.
e2e_cache=${RICK_E2E_CACHE:-/var/cache/rick-e2e}

say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, systemd-nspawn and nsenter need it)"
}

# Installs the machine-side tools the test host needs, on a fresh machine too.
ensure_tools() {
  missing=""
  command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
  command -v systemd-nspawn >/dev/null 2>&1 || missing="$missing systemd-container"
  command -v nsenter >/dev/null 2>&1 || missing="$missing util-linux"
  command -v zstd >/dev/null 2>&1 || missing="$missing zstd"
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing="$missing debian-archive-keyring"
  if [ -n "$missing" ]; then
    say "installing on this machine:$missing"
    apt-get update -q >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >&2
  fi
}
