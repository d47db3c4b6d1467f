#!/bin/sh
# A private apt configuration for Debian 13 (trixie), next to the machine's own
# sources and without touching them: its lists and downloads live under
# .cache/apt-trixie. The archive address is taken from this machine's apt
# sources (or DEBIAN_ARCHIVE_URI), so the project names no package host.
#
#   scripts/debian13-apt.sh uri                print the archive URI
#   scripts/debian13-apt.sh download DIR PKG…  download .debs into DIR
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
state="$here/.cache/apt-trixie"

archive_uri() {
  # A machine whose own apt sources are not Debian's (a CI runner on another
  # distribution) names the archive in DEBIAN_ARCHIVE_URI instead.
  if [ -n "${DEBIAN_ARCHIVE_URI:-}" ]; then
    printf '%s\n' "$DEBIAN_ARCHIVE_URI"
    return
  fi
  uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { echo "debian13-apt: no Debian archive URI in /etc/apt/sources*" >&2; exit 1; }
  printf '%s\n' "$uri"
}

apt_opts() {
  echo "-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$state/parts \
-o Dir::State::Lists=$state/lists -o Dir::Cache=$state/cache -o Dir::State::status=/dev/null \
-o Debug::NoLocking=1 -o APT::Sandbox::User=root"
}

prepare() {
  mkdir -p "$state/parts" "$state/lists/partial" "$state/cache/archives/partial"
  cat >"$state/parts/trixie.sources" <<SRC
Types: deb
URIs: $(archive_uri)
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # Refresh the package lists at most once a day.
  if [ -z "$(find "$state/lists" -name '*trixie*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
    # shellcheck disable=SC2046
    apt-get $(apt_opts) -q update >&2
  fi
}

case "${1:-}" in
  uri) archive_uri ;;
  download)
    [ $# -ge 3 ] || { echo "usage: $0 download DIR PKG..." >&2; exit 2; }
    dir=$2; shift 2
    prepare
    mkdir -p "$dir"
    # shellcheck disable=SC2046
    (cd "$dir" && apt-get $(apt_opts) -q download "$@" >&2)
    ;;
  *) echo "usage: $0 uri | download DIR PKG..." >&2; exit 2 ;;
esac
