#!/bin/sh
# Everything a fresh Debian machine needs to build, sign and test rick:
# GnuPG (for gpgv interoperability), shellcheck and systemd-analyze (the
# installer's scripts and units are checked with them), Caddy (bundles' Caddy
# sites are checked with `caddy validate`, and a test reloads a real Caddy on
# loopback ports; Debian's package also enables its own caddy.service, which
# nothing here needs), PostgreSQL (declared databases are tested against a
# cluster each test starts itself with initdb and pg_ctl on a temporary
# socket directory; the package's own cluster is not used) and redis-server
# (Valkey's stand-in for the pre-flight's PING: Debian 12 has no valkey
# package, and both answer the same PING on a unix socket), mandoc (the
# generated manual pages are linted with `mandoc -T lint`), bash-completion
# (a test loads the generated completions through its on-demand loader),
# docker-registry and skopeo (`rick-bundle pin` is tested against a real
# registry each test starts on a loopback port, images pushed by skopeo;
# openssl makes the certificate its token server signs with; the package's
# own registry service is not used), the npm dependencies, and podman 5.4's
# quadlet generator unpacked under .cache
# (nothing else of podman is installed).
# Idempotent; run it from anywhere.
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v gpg >/dev/null 2>&1 || missing="$missing gnupg"
command -v gpgv >/dev/null 2>&1 || missing="$missing gpgv"
command -v dpkg >/dev/null 2>&1 || missing="$missing dpkg"
command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
command -v caddy >/dev/null 2>&1 || missing="$missing caddy"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v mandoc >/dev/null 2>&1 || missing="$missing mandoc"
[ -f /usr/share/bash-completion/bash_completion ] || missing="$missing bash-completion"
command -v docker-registry >/dev/null 2>&1 || missing="$missing docker-registry"
command -v skopeo >/dev/null 2>&1 || missing="$missing skopeo"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
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

# Put rick-bundle and rick-install on the PATH, as the README shows them: as
# root, links in /usr/local/bin to this checkout's build; never over a file
# that is not such a link (on a host, /usr/local/bin/rick-install is the
# installer that rick itself manages).
bin_dir=/usr/local/bin
linked=""
for prog in rick-bundle rick-install; do
  target="$(pwd)/dist/cli/$prog.js"
  link="$bin_dir/$prog"
  if [ "$(id -u)" -eq 0 ] && { [ ! -e "$link" ] && [ ! -L "$link" ] || case "$(readlink "$link" 2>/dev/null)" in */dist/cli/"$prog".js) true ;; *) false ;; esac; }; then
    ln -sfn "$target" "$link"
    linked="$linked $prog"
  else
    echo "setup: $link is not this checkout's $prog; run it as: node $target" >&2
  fi
done
[ -z "$linked" ] || echo "setup: linked$linked into $bin_dir"

# Their manual pages and bash completions (npm run build writes them under
# dist/), linked the same way: /usr/local/share/man is on man-db's
# MANDATORY_MANPATH, and bash-completion loads a command's completion on its
# first TAB from <dir>/bash-completion/completions/<command> for each dir of
# XDG_DATA_DIRS (default /usr/local/share:/usr/share); /etc/bash_completion.d
# is its older directory, read whole at every shell's start.
if [ "$(id -u)" -eq 0 ]; then
  linked=""
  for prog in rick-bundle rick-install; do
    for pair in "dist/man/man1/$prog.1 /usr/local/share/man/man1/$prog.1" \
      "dist/bash-completion/completions/$prog /usr/local/share/bash-completion/completions/$prog"; do
      target="$(pwd)/${pair%% *}"
      link="${pair#* }"
      if { [ ! -e "$link" ] && [ ! -L "$link" ]; } ||
        case "$(readlink "$link" 2>/dev/null)" in */"${pair%% *}") true ;; *) false ;; esac; then
        mkdir -p "$(dirname "$link")"
        ln -sfn "$target" "$link"
        linked="$linked $link"
      else
        echo "setup: $link is not a link into a checkout's dist/; left as it is" >&2
      fi
    done
  done
  [ -z "$linked" ] || echo "setup: linked$linked (man rick-install; bash completes both programs)"
fi
echo "setup: done"
