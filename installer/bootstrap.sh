#!/bin/sh
# Bootstraps a fresh host from one signed bundle, with nothing but Node.js 20+,
# gpgv and tar:
#
#   sh bootstrap.sh --bundle authentik-1.2.0.tgz --key release.asc \
#      --feed acme/rick-releases --bundles authentik [--range '^1'] [--channel stable] [--caddy] [--yes]
#
# 1. checks the bundle's detached signature (BUNDLE.sig unless --signature)
#    with gpgv against the release key, before anything is read from the bundle
#    or written to the host;
# 2. checks that the verified bundle is the one asked for: the bundle and
#    version its file name states (<name>-<version>.tgz), or --expect
#    NAME@VERSION for a file saved under another name; extracts
#    installer/rick-install.cjs from it;
# 3. runs the installer's `plan` on the host: every missing group, user and
#    secret (and podman, Caddy) is named at once, and nothing is written
#    until all are there (a grant alone missing is asked for in step 5);
# 4. installs the release key into /etc/rick/keys (root, 0644, directory 0755),
#    writes /etc/rick/rick.conf, installs rick-update.timer/.service into
#    /etc/systemd/system, and the installer's manual page and bash completion
#    (when the bundle carries them) into /usr/local/share;
#    with --caddy, adds to /etc/caddy/Caddyfile the one line that imports the
#    Caddy sites of rick's bundles, and says so (the Caddyfile is the
#    operator's: without --caddy it is only read, and a missing line noted);
# 5. runs the first install with the extracted installer, which checks the
#    signature and the expectation again (--expect), with --grant: it shows
#    what the release needs beyond the restricted profile and records the
#    operator's grant in /etc/rick/policy.d/<bundle>.conf (asking on the
#    terminal, or accepting with --yes; never the privileged profile); it
#    points /usr/local/bin/rick-install at the live generation's installer,
#    so the command updates and rolls back with the services; then it
#    enables the timer.
#
# The key may be armored (.asc; gpg is then needed to dearmor it for gpgv) or
# binary (.gpg; gpgv alone suffices). Idempotent: running it again with the
# same arguments changes nothing (the installer treats the installed version
# as a no-op). --root DIR does everything inside DIR (an image or a test tree),
# with `systemctl --root` and no running service manager.
set -eu

usage() {
  cat <<'EOF'
usage: bootstrap.sh --bundle FILE --key FILE --feed OWNER/NAME|URL --bundles "NAME..."
                    [--expect NAME@VERSION] [--signature FILE]
                    [--channel stable|prerelease] [--range RANGE] [--root DIR] [--no-timer]
                    [--caddy] [--yes]
EOF
}

die() {
  echo "bootstrap: $*" >&2
  exit 1
}

bundle=""
expect=""
signature=""
key=""
feed=""
bundles=""
channel="stable"
range="*"
root=""
timer=1
caddy=0
yes=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle="${2:?--bundle needs a file}"; shift 2 ;;
    --expect) expect="${2:?--expect needs NAME@VERSION}"; shift 2 ;;
    --signature) signature="${2:?--signature needs a file}"; shift 2 ;;
    --key) key="${2:?--key needs a file}"; shift 2 ;;
    --feed) feed="${2:?--feed needs a value}"; shift 2 ;;
    --bundles) bundles="${2:?--bundles needs names}"; shift 2 ;;
    --channel) channel="${2:?--channel needs a value}"; shift 2 ;;
    --range) range="${2:?--range needs a value}"; shift 2 ;;
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --no-timer) timer=0; shift ;;
    --caddy) caddy=1; shift ;;
    --yes) yes="--yes"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[ -n "$bundle" ] || { usage >&2; die "--bundle is required"; }
[ -n "$key" ] || { usage >&2; die "--key is required"; }
[ -n "$feed" ] || { usage >&2; die "--feed is required"; }
[ -n "$bundles" ] || { usage >&2; die "--bundles is required"; }
[ -n "$signature" ] || signature="$bundle.sig"
[ -f "$bundle" ] || die "no such bundle: $bundle"
[ -f "$signature" ] || die "no signature: $signature (pass --signature FILE)"
[ -f "$key" ] || die "no such key file: $key"
case "$channel" in stable|prerelease) ;; *) die "--channel must be stable or prerelease" ;; esac
# What the bundle must hold: --expect, else what its file name states. A bundle
# name has no dots and a version starts with MAJOR., so the name ends at the
# last dash before the first dot (the installer checks the exact forms).
if [ -z "$expect" ]; then
  file=$(basename "$bundle")
  stem=${file%.tgz}
  before_dot=${stem%%.*}
  name=${before_dot%-*}
  if [ "$stem" = "$file" ] || [ "$before_dot" = "$stem" ] || [ "$name" = "$before_dot" ] || [ -z "$name" ]; then
    die "$file does not say which bundle and version it holds (not <name>-<version>.tgz): pass --expect NAME@VERSION"
  fi
  expect="$name@${stem#"$name"-}"
fi
case "$expect" in
  [a-z0-9]*@[0-9]*.*) ;;
  *) die "--expect must be NAME@VERSION, such as authentik@1.2.0, not $expect" ;;
esac
# rick.conf is KEY=value; a value must stay on one line and not smuggle a quote.
for value in "$feed" "$bundles" "$range"; do
  case "$value" in *'
'*|*\"*|*\'*|*\\*) die "values may not contain quotes, backslashes or newlines: $value" ;; esac
done
if [ -n "$root" ]; then
  [ -d "$root" ] || die "--root $root is not a directory"
  root=$(cd "$root" && pwd)
fi

if [ "$caddy" -eq 1 ] && [ ! -f "$root/etc/caddy/Caddyfile" ]; then
  die "--caddy: $root/etc/caddy/Caddyfile does not exist (install Caddy first: apt-get install caddy)"
fi

for tool in node gpgv tar; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required (apt-get install nodejs gpgv tar)"
done
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "Node.js 20 or newer is required (found $(node --version); Debian 12's apt has 18)"
# podman 5.3 reads the symlinked unit directory rick installs; Debian 12 has 4.3.
# An offline tree (--root) is checked by the installer against its own podman.
if [ -z "$root" ]; then
  command -v podman >/dev/null 2>&1 || die "podman 5.3 or newer is required (not found)"
  podman_version=$(podman --version | sed -n 's/^podman[a-z-]* version \([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p')
  # shellcheck disable=SC2086
  set -- $podman_version
  { [ $# -eq 2 ] && { [ "$1" -gt 5 ] || { [ "$1" -eq 5 ] && [ "$2" -ge 3 ]; }; }; } ||
    die "podman 5.3 or newer is required (found: $(podman --version))"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rick-bootstrap.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# 1. Verify before reading anything inside the bundle.
if grep -q -- '-----BEGIN PGP PUBLIC KEY BLOCK-----' "$key"; then
  command -v gpg >/dev/null 2>&1 || die "the key is armored: gpg is needed to dearmor it (or pass the binary key)"
  # A home of its own: dearmoring needs none of root's keyrings, must not be
  # changed by root's gpg.conf, nor create ~/.gnupg on the host.
  mkdir -m 0700 "$work/gnupg"
  gpg --homedir "$work/gnupg" --batch --quiet --dearmor --output "$work/keyring.gpg" "$key" ||
    die "cannot read the key $key"
  key_name=release.asc
else
  cp "$key" "$work/keyring.gpg"
  key_name=release.gpg
fi
if ! gpgv --keyring "$work/keyring.gpg" "$signature" "$bundle" 2>"$work/gpgv.log"; then
  cat "$work/gpgv.log" >&2
  die "signature check FAILED for $bundle: nothing was installed"
fi
echo "bootstrap: signature of $(basename "$bundle") verified"

# 2. The bundle asked for, and its installer.
tar -xzf "$bundle" -C "$work" manifest.json 2>"$work/tar.log" ||
  { cat "$work/tar.log" >&2; die "$bundle carries no manifest.json"; }
if [ ! -f "$work/manifest.json" ] || [ -L "$work/manifest.json" ]; then
  die "manifest.json is not a regular file"
fi
found=$(node -e '
  const m = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  process.stdout.write(m.name + "@" + m.version);
' "$work/manifest.json") || die "cannot read the manifest of $bundle"
if [ "$found" != "$expect" ]; then
  die "$(basename "$bundle") holds $found (its signed manifest), not $expect: nothing was installed"
fi
tar -xzf "$bundle" -C "$work" installer/rick-install.cjs 2>"$work/tar.log" ||
  { cat "$work/tar.log" >&2; die "$bundle carries no installer/rick-install.cjs"; }
installer="$work/installer/rick-install.cjs"
if [ ! -f "$installer" ] || [ -L "$installer" ]; then
  die "installer/rick-install.cjs is not a regular file"
fi
# Its manual page and bash completion, in bundles built since they exist
# (a bundle without them is installed all the same).
docs=0
if tar -xzf "$bundle" -C "$work" installer/rick-install.1 installer/rick-install.bash 2>/dev/null; then
  for doc in "$work/installer/rick-install.1" "$work/installer/rick-install.bash"; do
    if [ ! -f "$doc" ] || [ -L "$doc" ]; then
      die "installer/$(basename "$doc") is not a regular file"
    fi
  done
  docs=1
fi

# 3. What the host must provide (groups, users, secrets; podman, Caddy), all
#    checked and named at once by the installer's plan before anything is
#    written. A grant alone missing is fine here: step 5 shows it and asks.
install -m 0644 "$key" "$work/keys.$key_name"
echo "bootstrap: checking what $expect needs of this host"
plan_status=0
if [ -n "$root" ]; then
  node "$installer" plan "$bundle" --signature "$signature" --expect "$expect" \
    --keyring "$work/keys.$key_name" --root "$root" >"$work/plan.out" 2>"$work/plan.err" || plan_status=$?
else
  node "$installer" plan "$bundle" --signature "$signature" --expect "$expect" \
    --keyring "$work/keys.$key_name" >"$work/plan.out" 2>"$work/plan.err" || plan_status=$?
fi
case "$plan_status" in
  0 | 14) ;;
  *)
    # --caddy adds the import line below: its absence is for this run to fix.
    if [ "$plan_status" -eq 5 ] && [ "$caddy" -eq 1 ] &&
      grep -q "does not import rick's Caddy sites" "$work/plan.err"; then
      :
    else
      cat "$work/plan.err" >&2
      die "nothing was written: fix what is named above, then run bootstrap.sh again with the same arguments"
    fi
    ;;
esac

# 4. Key, configuration, units.
install -d -m 0755 -o root -g root "$root/etc/rick" "$root/etc/rick/keys" \
  "$root/etc/systemd/system"
install -m 0644 -o root -g root "$key" "$root/etc/rick/keys/$key_name"

cat >"$work/rick.conf" <<EOF
# rick-install update follows this feed (written by bootstrap.sh; edit freely).
FEED=$feed
BUNDLES="$bundles"
CHANNEL=$channel
RANGE="$range"
EOF
chmod 0644 "$work/rick.conf"
if ! cmp -s "$work/rick.conf" "$root/etc/rick/rick.conf" 2>/dev/null; then
  mv -f "$work/rick.conf" "$root/etc/rick/rick.conf"
  echo "bootstrap: wrote /etc/rick/rick.conf"
fi

write_unit() {
  cat >"$work/$1"
  chmod 0644 "$work/$1"
  if ! cmp -s "$work/$1" "$root/etc/systemd/system/$1" 2>/dev/null; then
    mv -f "$work/$1" "$root/etc/systemd/system/$1"
    echo "bootstrap: installed /etc/systemd/system/$1"
  fi
}
# The units below are installer/systemd/ verbatim (a test keeps them equal).
write_unit rick-update.timer <<'UNIT'
# Follows the release feed named in /etc/rick/rick.conf.
# Every host checks shortly after boot and then once an hour, each at its own
# fixed random offset in the hour (FixedRandomDelay), so a fleet never hits
# the feed at once; a check missed while the host was off runs at boot
# (Persistent). A no-op check is one conditional request answered 304.
[Unit]
Description=Check the rick release feed for new bundles
Documentation=man:systemd.timer(5)

[Timer]
OnBootSec=5min
OnCalendar=hourly
RandomizedDelaySec=1h
FixedRandomDelay=true
Persistent=true
AccuracySec=1min

[Install]
WantedBy=timers.target
UNIT
write_unit rick-update.service <<'UNIT'
# One tick of `rick-install update`: check the feed, install what is new
# through the same verified, atomic pipeline as `rick-install <bundle>`.
# See the last runs with `systemctl list-timers rick-update.timer` and
# `journalctl -u rick-update`.
[Unit]
Description=Install new rick bundles from the release feed
# After time-sync.target: a host without an RTC boots with a wrong wall
# clock, and the run reads it (the signed index's expiry, rollout waves).
# Ordered after it, not pulling it in, as systemd.special(7) asks of its
# consumers: the synchronisation service pulls it in and is reached once
# the clock is synchronised when systemd-time-wait-sync.service (or
# chrony-wait.service) is enabled.
Wants=network-online.target
After=network-online.target time-sync.target
ConditionPathExists=/etc/rick/rick.conf

[Service]
Type=oneshot
ExecStart=/usr/local/bin/rick-install update
# GITHUB_TOKEN=…, HTTPS_PROXY=…, NO_PROXY=… for hosts that need them.
EnvironmentFile=-/etc/rick/update.env
# An activation and the restore after a failed gate each stop after 1500s
# (src/bundle/activation-budget.ts), so both fit in this; keep them equal.
TimeoutStartSec=1h
# A stop (that timeout, or shutdown) sends SIGTERM to rick-install alone: it
# puts back what it made live, then exits (exit 16); the systemctl and podman
# it runs are not cut short. Past TimeoutStopSec (90 s) SIGKILL ends it all,
# and the next tick completes the restore from the intent record.
KillMode=mixed
UMask=0022

# What an install writes, and nothing else:
# - /var/lib/rick: generations, current, state.json, lock, feed cache;
# - /etc: /etc/containers/systemd/rick (created once), and the user and group
#   databases that systemd-sysusers updates (it writes temporary files next to
#   /etc/passwd and renames them, so the directory itself must be writable);
# - /var/lib, /var/cache, /var/log, /srv and /run: what the bundles'
#   tmpfiles.d fragments may create (service homes, data, cache, log and
#   runtime directories; src/bundle/tmpfiles.ts names these roots);
# - the node-exporter textfile directory, when there is one.
ProtectSystem=strict
ReadWritePaths=/etc /var/lib /var/cache /var/log /srv /run
ReadWritePaths=-/var/lib/prometheus/node-exporter
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
RestrictSUIDSGID=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
LockPersonality=yes
SystemCallArchitectures=native
# Unix sockets for systemctl, getent (nss/sssd) and the journal; IP for the
# feed and the loopback health checks; netlink for address lookups.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
# Not MemoryDenyWriteExecute: Node's JIT needs writable executable memory.
UNIT

# `man rick-install` and the completion of `rick-install` in bash, copied from
# the verified bundle where man-db (MANDATORY_MANPATH) and bash-completion's
# on-demand loader (XDG_DATA_DIRS) look first for what is installed locally.
# Copies, not links into the live generation: a generation keeps only the
# installer itself. They describe the installer of the bootstrap bundle; run
# bootstrap.sh with a newer bundle to refresh them.
install_doc() {
  if ! cmp -s "$1" "$root$2" 2>/dev/null; then
    install -d -m 0755 "$(dirname "$root$2")"
    install -m 0644 "$1" "$root$2"
    echo "bootstrap: installed $2"
  fi
}
if [ "$docs" -eq 1 ]; then
  install_doc "$work/installer/rick-install.1" /usr/local/share/man/man1/rick-install.1
  install_doc "$work/installer/rick-install.bash" /usr/local/share/bash-completion/completions/rick-install
fi

# Caddy serves the bundles' sites from /etc/caddy/rick, a link into the live
# generation, through one line of the host's Caddyfile; RICK_CADDY_SITES lets
# rick-install check a new generation's sites with the same Caddyfile before
# they go live. The line is added only when asked, and said so.
# shellcheck disable=SC2016 # Caddy's placeholder, written as it is
caddy_line='import {$RICK_CADDY_SITES:/etc/caddy/rick}/*.caddy'
caddyfile="$root/etc/caddy/Caddyfile"
if [ "$caddy" -eq 1 ]; then
  if ! grep -qxF "$caddy_line" "$caddyfile"; then
    printf '\n# The Caddy sites of the bundles rick installs (added by rick'"'"'s bootstrap.sh).\n%s\n' "$caddy_line" >>"$caddyfile"
    echo "bootstrap: added to /etc/caddy/Caddyfile: $caddy_line"
  fi
elif [ -f "$caddyfile" ] && ! grep -qxF "$caddy_line" "$caddyfile"; then
  echo "bootstrap: note: /etc/caddy/Caddyfile does not import rick's sites; bundles with Caddy sites need this line (--caddy adds it): $caddy_line"
fi

# 5. The first install, with the installer from the verified bundle, granting
#    what the release needs once the operator accepts it.
if [ -n "$root" ]; then
  node "$installer" install "$bundle" --signature "$signature" --expect "$expect" --grant $yes --root "$root"
else
  node "$installer" install "$bundle" --signature "$signature" --expect "$expect" --grant $yes
fi

if [ "$timer" -eq 1 ]; then
  if [ -n "$root" ]; then
    systemctl --root="$root" enable rick-update.timer
  else
    systemctl daemon-reload
    systemctl enable --now rick-update.timer
  fi
  echo "bootstrap: rick-update.timer enabled"
fi
echo "bootstrap: done"
