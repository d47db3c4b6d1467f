/**
 * The systemd generator that makes the plain units of rick's live generation
 * visible to systemd, as podman's quadlet generator does for Quadlet units:
 * at every daemon-reload it links /var/lib/rick/current/systemd/<bundle>/*
 * into the generator directory (below /etc/systemd/system and
 * /run/systemd/system, above /usr/lib/systemd/system), with the
 * `<target>.wants/` and `<target>.requires/` links of each unit's [Install]
 * section. So the one `current` flip switches plain units too, a rollback
 * takes them back, and a removed unit is gone at the next daemon-reload.
 *
 * rick-install writes it once to /etc/systemd/system-generators/rick-units
 * (a plain file, so that it also runs at boot before /var is mounted, when it
 * finds nothing and exits) and `verify` checks it is unchanged.
 */
import { constants } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { wrapError } from '../errors.js';
import type { HostPaths } from './paths.js';
import { fsyncDir } from './state.js';

/** The first line after the shebang: how rick recognises its own generator. */
export const UNIT_GENERATOR_MARKER = '# rick-units: a systemd generator';

export const UNIT_GENERATOR_SCRIPT = `#!/bin/sh
# rick-units: a systemd generator (systemd.generator(7)) that shows systemd
# the plain units of rick's live generation, as podman's quadlet shows it the
# Quadlet units: every /var/lib/rick/current/systemd/<bundle>/<unit> is linked
# into the generator directory, and its [Install] WantedBy=/RequiredBy= into
# <target>.wants/ and <target>.requires/, which \`systemctl enable\` would make.
# Written by rick-install; do not edit (rick-install verify checks it).
set -u
out=\${1:?usage: rick-units NORMAL-DIR [EARLY-DIR LATE-DIR]}
state=\${RICK_STATE_DIR:-/var/lib/rick}
# One readlink: the links below all point into one generation, even if
# \`current\` flips while this runs.
live=$(readlink "$state/current" 2>/dev/null) || exit 0
units="$state/$live/systemd"
[ -d "$units" ] || exit 0
status=0
for unit in "$units"/*/*; do
  # Word splitting below is wanted (WantedBy= takes a list); globbing is not.
  set -f
  [ -f "$unit" ] || continue
  name=\${unit##*/}
  case "$name" in
    *.service | *.timer | *.path | *.socket) ;;
    *) continue ;;
  esac
  if ! ln -s "$unit" "$out/$name" 2>/dev/null; then
    echo "rick-units: $out/$name exists already; $unit not linked" >&2
    status=1
    continue
  fi
  for kind in WantedBy:wants RequiredBy:requires; do
    key=\${kind%%:*}
    # shellcheck disable=SC2013
    for target in $(sed -n "/^\\[Install\\]/,/^\\[/s/^[[:space:]]*\${key}[[:space:]]*=//p" "$unit"); do
      case "$target" in
        *[!A-Za-z0-9@_.:-]* | .* | '')
          echo "rick-units: $unit: $key=$target is not a unit name; ignored" >&2
          status=1
          continue
          ;;
      esac
      dir="$out/$target.\${kind#*:}"
      { mkdir -p "$dir" && ln -sf "$unit" "$dir/$name"; } || status=1
    done
  done
done
exit "$status"
`;

export type GeneratorState = 'current' | 'absent' | 'older' | 'foreign';

/** Whether the generator on the host is this one, an older rick's, missing, or someone else's file. */
export async function readGeneratorState(paths: HostPaths): Promise<GeneratorState> {
  let text: string;
  try {
    text = await readFile(paths.unitGenerator, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw wrapError(error, 'IO_ERROR', `cannot read ${paths.unitGenerator}`);
  }
  if (text === UNIT_GENERATOR_SCRIPT) return 'current';
  return text.split('\n')[1]?.startsWith(UNIT_GENERATOR_MARKER) ? 'older' : 'foreign';
}

/** The temporary file of a write, outside the generator directory (see below). */
export function unitGeneratorTemp(paths: HostPaths): string {
  return join(dirname(dirname(paths.unitGenerator)), `.rick-units.tmp-${process.pid}`);
}

/**
 * Writes the generator (0755) by a rename, so that systemd never runs half a
 * script. The temporary file is written beside the generator directory, not
 * in it: systemd runs every executable there.
 */
export async function writeUnitGenerator(paths: HostPaths): Promise<void> {
  const target = paths.unitGenerator;
  const tmp = unitGeneratorTemp(paths);
  try {
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
    await rm(tmp, { force: true });
    const handle = await open(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
      0o755,
    );
    try {
      await handle.writeFile(UNIT_GENERATOR_SCRIPT);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(tmp, 0o755);
    await rename(tmp, target);
    await fsyncDir(dirname(target));
  } catch (error) {
    await rm(tmp, { force: true });
    throw wrapError(error, 'IO_ERROR', `cannot write ${target}`);
  }
}
