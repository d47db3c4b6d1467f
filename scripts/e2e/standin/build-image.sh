#!/bin/sh
# Runs inside the end-to-end test host: builds the stand-in for the Authentik
# image from the host's own binaries (a shell, node, psql, valkey-cli and the
# libraries they load) and imports it as IMAGE (default
# localhost/authentik-standin:e2e). Nothing is pulled. Idempotent.
#
#   build-image.sh [IMAGE [PAD_MB [COMMAND]]]
#
# The image carries its own name in /etc/authentik-standin-image, so images
# built under different names are different images (different layer
# digests): pulling one is a real download even when the other is present.
# PAD_MB adds a file of that many MiB of random bytes, which no compression
# shrinks, so that benchmarks can make the image as large as they need.
# COMMAND, when given, is put in front of whatever the unit's Exec= passes
# (ENTRYPOINT ak COMMAND): `unhealthy` makes an image that serves as usual
# and fails its health check; any other word `ak` takes as its mode, so an
# unknown one makes an image whose every container exits at start, as a
# release whose entrypoint was renamed would.
set -eu
image=${1:-localhost/authentik-standin:e2e}
pad_mb=${2:-0}
command=${3:-}
case "$pad_mb" in '' | *[!0-9]*) echo "build-image: PAD_MB must be a number of MiB, got '$pad_mb'" >&2; exit 2 ;; esac
case "$command" in *[!a-z0-9-]*) echo "build-image: COMMAND must be lower-case letters, digits and -, got '$command'" >&2; exit 2 ;; esac
entrypoint='"/usr/local/bin/ak"'
[ -z "$command" ] || entrypoint="$entrypoint, \"$command\""
if podman image exists "$image"; then
  echo "build-image: $image exists"
  exit 0
fi
dir=$(mktemp -d /var/tmp/standin.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# Debian 13 merges /usr: keep the same shape in the image.
mkdir -p "$dir/usr/bin" "$dir/usr/lib" "$dir/usr/lib64" "$dir/usr/sbin" "$dir/usr/local/bin" \
  "$dir/etc" "$dir/tmp" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/run" "$dir/var/run"
for d in bin lib lib64 sbin; do ln -s "usr/$d" "$dir/$d"; done
chmod 1777 "$dir/tmp"

in_usr() {
  case "$1" in
    /bin/* | /lib/* | /lib64/* | /sbin/*) echo "/usr$1" ;;
    *) echo "$1" ;;
  esac
}

# Copies a file (following links) to the given path in the image, and the
# shared libraries it loads to their own paths.
add() {
  src=$1 dst=$(in_usr "$2")
  mkdir -p "$dir$(dirname "$dst")"
  cp -L "$src" "$dir$dst"
  ldd "$src" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/.*\(/ { print $1 }' | while read -r lib; do
    l=$(in_usr "$lib")
    [ -e "$dir$l" ] && continue
    mkdir -p "$dir$(dirname "$l")"
    cp -L "$lib" "$dir$l"
  done
}

psql=$(ls /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)
add "$psql" /usr/bin/psql
add /usr/bin/valkey-cli /usr/bin/valkey-cli
add /usr/bin/node /usr/bin/node
# Debian's node loads some of its builtins from these files at start.
for f in $(grep -aoE '/usr/share/nodejs/[A-Za-z0-9_./-]+\.js' /usr/lib/*/libnode.so.* | sort -u); do
  [ -f "$f" ] && add "$f" "$f"
done
add /bin/dash /usr/bin/sh
for tool in cat id ls sleep env; do add "/usr/bin/$tool" "/usr/bin/$tool"; done
install -m 0755 "$(dirname "$0")/ak.mjs" "$dir/usr/local/bin/ak"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
printf '%s\n' "$image" >"$dir/etc/authentik-standin-image"
if [ "$pad_mb" -gt 0 ]; then
  mkdir -p "$dir/usr/share/authentik-standin"
  head -c "${pad_mb}M" /dev/urandom >"$dir/usr/share/authentik-standin/padding"
fi

echo "build-image: importing $(du -sh "$dir" | cut -f1) as $image"
tar --numeric-owner -C "$dir" -cf - . | podman import \
  --change "ENTRYPOINT [$entrypoint]" \
  --change 'CMD ["server"]' \
  --change 'ENV PATH=/usr/local/bin:/usr/bin' \
  - "$image" >/dev/null
echo "build-image: $image ready"
