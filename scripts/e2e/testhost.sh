#!/bin/sh
# The end-to-end test host: a Debian 13 systemd container booted with
# systemd-nspawn, with the infrastructure the Authentik deployment expects
# (native PostgreSQL and Valkey on Unix sockets only, client groups), a
# loopback image registry, and a stand-in for the Authentik image.
#
#   testhost.sh create RUN     unpack the cached root into RUN/root and configure it
#   testhost.sh boot RUN       boot it in the background; prints its init's PID
#   testhost.sh pid RUN        prints the PID of the running host's init
#   testhost.sh exec RUN CMD…  runs CMD inside the host
#   testhost.sh stop RUN       powers it off (kills it if it does not stop)
#   testhost.sh destroy RUN    stops it and removes RUN
#   testhost.sh smoke          create, boot, check the infrastructure, destroy
#
# RUN is a scratch directory; RUN/infra.env keeps the generated infrastructure
# passwords for the tests (root, 0600).
set -eu
. "$(dirname "$0")/lib.sh"
need_root

# GIDs that no Debian machine hands out by default, so that a GID baked in at
# build time (from the build machine) cannot match the test host's.
PG_CLIENTS_GID=${RICK_E2E_PG_CLIENTS_GID:-4711}
VALKEY_CLIENTS_GID=${RICK_E2E_VALKEY_CLIENTS_GID:-4712}
# The loopback registry inside the host (test/e2e names it too).
REGISTRY_PORT=5000

# --- create ------------------------------------------------------------------

random_secret() {
  # Characters that a URL must percent-encode, to prove the bundle does it.
  printf '%s/+&@%s' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    "$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
}

check_gid_free() {
  if grep -q "^[^:]*:[^:]*:$1:" /etc/group; then
    die "GID $1 exists on this machine; choose another with RICK_E2E_*_GID"
  fi
}

create() {
  run=$1
  [ ! -e "$run/root" ] || die "$run/root exists; destroy it first"
  check_gid_free "$PG_CLIENTS_GID"
  check_gid_free "$VALKEY_CLIENTS_GID"
  tarball=$("$e2e_repo/scripts/e2e/build-root.sh")
  mkdir -p "$run/root"
  say "unpacking $tarball into $run/root"
  zstd -dc "$tarball" | tar --numeric-owner --xattrs --xattrs-include='*' --acls -xpf - -C "$run/root"
  r=$run/root

  say "infrastructure groups: postgres-clients=$PG_CLIENTS_GID valkey-clients=$VALKEY_CLIENTS_GID"
  chroot "$r" groupadd -g "$PG_CLIENTS_GID" postgres-clients
  chroot "$r" groupadd -g "$VALKEY_CLIENTS_GID" valkey-clients

  pg_password=$(random_secret)
  valkey_password=$(random_secret)
  (
    umask 077
    {
      echo "PG_PASSWORD='$pg_password'"
      echo "VALKEY_PASSWORD='$valkey_password'"
      echo "PG_CLIENTS_GID=$PG_CLIENTS_GID"
      echo "VALKEY_CLIENTS_GID=$VALKEY_CLIENTS_GID"
    } >"$run/infra.env"
  )

  say "PostgreSQL: Unix socket only, /run/postgresql 0770 postgres:postgres-clients, password login for authentik and gitea" \
    "(authentik's role and database made here; gitea's are rick's to make, the bundle declares them)"
  # Same name as postgresql-common's fragment, so this one replaces it.
  echo 'd /run/postgresql 0770 postgres postgres-clients - -' >"$r/etc/tmpfiles.d/postgresql-common.conf"
  pgconf=$(ls -d "$r"/etc/postgresql/*/main | head -n 1)
  cat >"$pgconf/conf.d/50-rick-e2e.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '/var/run/postgresql'
CONF
  {
    echo 'local authentik authentik scram-sha-256'
    echo 'local gitea gitea scram-sha-256'
    cat "$pgconf/pg_hba.conf"
  } >"$pgconf/pg_hba.conf.new"
  chroot "$r" chown postgres:postgres "${pgconf#"$r"}/pg_hba.conf.new"
  chmod 0640 "$pgconf/pg_hba.conf.new"
  mv "$pgconf/pg_hba.conf.new" "$pgconf/pg_hba.conf"
  # Authentik's role and database are made at first boot, when the server
  # runs. Gitea's are not: its bundle declares them (needs: databases:) and
  # rick-install makes them, as the end-to-end suite checks; the line in
  # pg_hba.conf above is the operator's part of the pattern.
  mkdir -p "$r/etc/rick-e2e"
  (umask 077; echo "PW=$pg_password" >"$r/etc/rick-e2e/postgres-role.env")
  cat >"$r/etc/rick-e2e/postgres-role.sql" <<'SQL'
SELECT 'CREATE ROLE authentik LOGIN'
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authentik') \gexec
ALTER ROLE authentik PASSWORD :'pw';
SELECT 'CREATE DATABASE authentik OWNER authentik'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'authentik') \gexec
SQL
  cat >"$r/etc/systemd/system/rick-e2e-postgres-role.service" <<'UNIT'
[Unit]
Description=Test host: PostgreSQL role and database for authentik
After=postgresql.service postgresql@17-main.service
Requires=postgresql.service

[Service]
Type=oneshot
RemainAfterExit=yes
User=postgres
EnvironmentFile=/etc/rick-e2e/postgres-role.env
ExecStart=/bin/sh -ec 'for i in $$(seq 100); do pg_isready -q && break; sleep 0.2; done; \
  psql -v ON_ERROR_STOP=1 -q -v pw="$$PW" -f /etc/rick-e2e/postgres-role.sql'

[Install]
WantedBy=multi-user.target
UNIT
  ln -sf /etc/systemd/system/rick-e2e-postgres-role.service "$r/etc/systemd/system/multi-user.target.wants/"

  say "Valkey: Unix socket only, requirepass, socket group valkey-clients set by a oneshot unit"
  cat >>"$r/etc/valkey/valkey.conf" <<CONF

# Test host: Unix socket only, password required.
bind 127.0.0.1
port 0
unixsocket /run/valkey/valkey.sock
unixsocketperm 770
requirepass "$valkey_password"
CONF
  cat >"$r/etc/systemd/system/valkey-socket-group.service" <<'UNIT'
[Unit]
Description=Give Valkey's socket to the valkey-clients group
After=valkey-server.service
BindsTo=valkey-server.service
PartOf=valkey-server.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -ec 'for i in $$(seq 100); do [ -S /run/valkey/valkey.sock ] && break; sleep 0.1; done; \
  chgrp valkey-clients /run/valkey /run/valkey/valkey.sock; chmod 0770 /run/valkey; chmod g-s /run/valkey'

[Install]
WantedBy=valkey-server.service
UNIT
  mkdir -p "$r/etc/systemd/system/valkey-server.service.wants"
  ln -sf /etc/systemd/system/valkey-socket-group.service "$r/etc/systemd/system/valkey-server.service.wants/"

  say "podman: no keyring, no default sysctls, no pids limit (test host only)"
  cat >"$r/etc/containers/containers.conf" <<'CONF'
# Test host only: inside systemd-nspawn there is no session keyring and the
# network sysctls podman sets by default are read-only. The host's cgroup v2
# tree has no controllers to delegate (this machine binds them to cgroup v1
# hierarchies), so podman must not ask for a pids limit: crun would fail with
# "controller `pids` is not available". Containers still get their own
# cgroups, under their units in system.slice.
[containers]
keyring = false
default_sysctls = []
pids_limit = 0
CONF

  say "registry: Debian's docker-registry on 127.0.0.1:$REGISTRY_PORT only, anonymous, plain HTTP (test host only)"
  # The packaged configuration listens on every address and asks for basic
  # authentication against an empty htpasswd file (which the host has no
  # bcrypt tool to fill). Keep its storage and the rest; bind it to loopback
  # and drop the auth section.
  regconf=$r/etc/docker/registry/config.yml
  awk '/^auth:/ { skip = 1; next } skip && /^[^ ]/ { skip = 0 } !skip' "$regconf" >"$regconf.new"
  sed -i "s/^\( *addr:\).*/\1 127.0.0.1:$REGISTRY_PORT/" "$regconf.new"
  mv "$regconf.new" "$regconf"
  grep -q "addr: 127.0.0.1:$REGISTRY_PORT\$" "$regconf" ||
    die "could not bind the registry to loopback in $regconf"
  ! grep -q '^auth:' "$regconf" || die "could not drop the auth section of $regconf"
  mkdir -p "$r/etc/containers/registries.conf.d"
  cat >"$r/etc/containers/registries.conf.d/50-rick-e2e.conf" <<CONF
# Test host only: the loopback registry speaks plain HTTP.
[[registry]]
location = "localhost:$REGISTRY_PORT"
insecure = true
CONF

  say "trimming the boot: no gettys, no apt timers"
  for u in getty@tty1.service console-getty.service apt-daily.timer apt-daily-upgrade.timer \
    dpkg-db-backup.timer fstrim.timer netavark-dhcp-proxy.socket systemd-pstore.service \
    systemd-modules-load.service; do
    ln -sf /dev/null "$r/etc/systemd/system/$u"
  done
  echo rick-e2e >"$r/etc/hostname"

  say "stand-in image sources and the feed server into /usr/local/lib/rick-e2e"
  mkdir -p "$r/usr/local/lib/rick-e2e"
  cp "$e2e_repo/scripts/e2e/standin/ak.mjs" "$e2e_repo/scripts/e2e/standin/build-image.sh" \
    "$e2e_repo/scripts/e2e/standin/publish-image.sh" "$e2e_repo/scripts/e2e/feed-server.mjs" \
    "$r/usr/local/lib/rick-e2e/"
  say "created $run"
}

# --- boot, exec, stop ---------------------------------------------------------

# The host's init: the child of systemd-nspawn whose PID in its own namespace
# is 1. (Its /proc/PID/root reads "/", being inside its own mount namespace.)
find_init() {
  np=$(nspawn_pid "$1") || return 1
  for p in $(pgrep -P "$np"); do
    if awk '/^NSpid:/ { exit !($NF == 1 && NF > 2) }' "/proc/$p/status" 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  return 1
}

nspawn_pid() { [ -f "$1/nspawn.pid" ] && cat "$1/nspawn.pid"; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

boot() {
  run=$1
  [ -d "$run/root" ] || die "$run/root does not exist; run create first"
  if alive "$(nspawn_pid "$run")"; then die "the host in $run is already running"; fi
  say "booting $run/root with systemd-nspawn (log: $run/nspawn.log)"
  # A private network keeps podman's bridge and firewall rules off this
  # machine; the host reaches everything the tests serve on its own loopback.
  # crun sets up a container's device cgroup with a BPF program, and
  # systemd-nspawn's own system call filter refuses bpf() to the processes
  # of the host's services ("bpf create: Operation not permitted").
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid systemd-nspawn -D "$run/root" --register=no \
    --keep-unit --capability=all --system-call-filter=bpf --private-network --console=passive --quiet -b \
    >"$run/nspawn.log" 2>&1 </dev/null &
  echo $! >"$run/nspawn.pid"
  i=0
  while ! pid=$(find_init "$run"); do
    i=$((i + 1))
    alive "$(nspawn_pid "$run")" || { cat "$run/nspawn.log" >&2; die "systemd-nspawn exited"; }
    [ $i -lt 300 ] || die "no init in $run/root after 30 s"
    sleep 0.1
  done
  say "init is PID $pid; waiting for the system to start"
  # systemctl needs the manager's private socket, which appears a moment later.
  i=0
  until nsenter -t "$pid" -a test -S /run/systemd/private 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 300 ] || die "systemd in $run/root did not open its socket in 30 s"
    sleep 0.1
  done
  state=$(timeout 120 nsenter -t "$pid" -a systemctl is-system-running --wait 2>/dev/null || true)
  case "$state" in
    running) say "system is running" ;;
    degraded)
      say "system is degraded; failed units:"
      nsenter -t "$pid" -a systemctl --failed --no-legend >&2 || true
      ;;
    *)
      nsenter -t "$pid" -a systemctl --failed --no-legend >&2 || true
      die "system did not start (state: ${state:-timeout})"
      ;;
  esac
  echo "$pid"
}

exec_in() {
  run=$1; shift
  pid=$(find_init "$run") || die "the host in $run is not running"
  exec nsenter -t "$pid" -a "$@"
}

stop() {
  run=$1
  np=$(nspawn_pid "$run" || true)
  if ! alive "$np"; then rm -f "$run/nspawn.pid"; return 0; fi
  say "powering off the host in $run"
  # systemd-nspawn turns SIGTERM into a clean poweroff of the container.
  kill -TERM "$np" 2>/dev/null || true
  i=0
  while alive "$np" && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
  if alive "$np"; then
    say "the host did not stop within 30 s; killing it"
    kill -KILL "$np" 2>/dev/null || true
    if pid=$(find_init "$run"); then kill -KILL "$pid" 2>/dev/null || true; fi
    sleep 0.5
  fi
  rm -f "$run/nspawn.pid"
}

destroy() {
  stop "$1"
  say "removing $1"
  rm -rf "$1"
}

# --- smoke check --------------------------------------------------------------

smoke() {
  run=$(mktemp -d /var/tmp/rick-e2e-smoke.XXXXXX)
  trap 'destroy "$run"' EXIT INT TERM
  create "$run"
  boot "$run" >/dev/null
  h() { "$0" exec "$run" "$@"; }
  . "$run/infra.env"
  say "check: PostgreSQL listens on no TCP port, Valkey neither"
  if h ss -Hltn | grep -q .; then h ss -ltnp >&2; die "something listens on TCP"; fi
  say "check: socket directories"
  h stat -c '%n %a %U:%G' /run/postgresql /run/valkey /run/valkey/valkey.sock >&2
  [ "$(h stat -c '%a %G' /run/postgresql)" = "770 postgres-clients" ] || die "/run/postgresql is not 0770 postgres-clients"
  [ "$(h stat -c '%a %G' /run/valkey)" = "770 valkey-clients" ] || die "/run/valkey is not 0770 valkey-clients"
  say "check: select 1 as authentik over the PostgreSQL socket"
  out=$(h env PGPASSWORD="$PG_PASSWORD" setpriv --reuid=65534 --regid="$PG_CLIENTS_GID" --clear-groups \
    psql -h /var/run/postgresql -U authentik -d authentik -tAc 'select 1')
  [ "$out" = 1 ] || die "psql answered '$out'"
  say "check: PING over the Valkey socket as a member of valkey-clients only"
  out=$(h env REDISCLI_AUTH="$VALKEY_PASSWORD" setpriv --reuid=65534 --regid="$VALKEY_CLIENTS_GID" --clear-groups \
    valkey-cli -s /var/run/valkey/valkey.sock -n 1 PING)
  [ "$out" = PONG ] || die "valkey-cli answered '$out'"
  say "check: without the client group, the sockets are out of reach"
  if h setpriv --reuid=65534 --regid=65534 --clear-groups valkey-cli -s /var/run/valkey/valkey.sock PING >/dev/null 2>&1; then
    die "valkey socket reachable without valkey-clients"
  fi
  say "check: the stand-in image builds, goes through the loopback registry, and a throwaway container runs"
  h /bin/sh /usr/local/lib/rick-e2e/publish-image.sh localhost:5000/authentik-standin:smoke >&2
  h podman pull localhost:5000/authentik-standin:smoke >&2
  out=$(h podman run --rm --entrypoint /bin/sh localhost:5000/authentik-standin:smoke -c 'echo hello from $(id -un) in a container')
  say "container said: $out"
  [ "${out%% *}" = hello ] || die "the throwaway container did not run"
  say "smoke check passed"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  create) [ $# -eq 1 ] || die "usage: create RUN"; create "$1" ;;
  boot) [ $# -eq 1 ] || die "usage: boot RUN"; boot "$1" ;;
  pid) [ $# -eq 1 ] || die "usage: pid RUN"; find_init "$1" || die "not running" ;;
  exec) [ $# -ge 2 ] || die "usage: exec RUN CMD..."; exec_in "$@" ;;
  stop) [ $# -eq 1 ] || die "usage: stop RUN"; stop "$1" ;;
  destroy) [ $# -eq 1 ] || die "usage: destroy RUN"; destroy "$1" ;;
  smoke) smoke ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
