/**
 * What podman's quadlet makes of a set of unit files, decided without
 * running it: which systemd service each unit becomes, and which drop-in
 * directories apply to it. Pure.
 *
 * The rules are podman 5.4's (cmd/quadlet/main.go, pkg/systemd/quadlet,
 * pkg/systemd/parser/unitfile.go):
 *
 * - Units are the files of a source directory with one of the extensions
 *   below; `.d` directories are never searched for units. Quadlet keeps the
 *   first unit of a file name it sees across all its source directories.
 * - The service is `ServiceName=` of the unit's own group (its last value,
 *   after the drop-ins are merged in, whitespace and `"` trimmed) plus
 *   `.service`, else the file name without its extension plus the kind's
 *   suffix: `x.container` and `x.kube` make `x.service`, `x.pod` makes
 *   `x-pod.service`, `x.volume` `x-volume.service`, and so on. So
 *   `x-pod.container` and `x.pod` both make `x-pod.service`.
 * - Drop-ins are `*.conf` files in, from the most to the least specific,
 *   `<unit>.d`, `<instance's template>@.<ext>.d`, every truncation of the
 *   name at a dash (`foo-bar.container` reads `foo-.container.d`), and
 *   `<ext>.d` (`container.d` applies to every container). They are looked
 *   up in every source directory, whoever put them there; a name seen once
 *   is not read again; they merge in file name order.
 * - `[Install] Alias=` makes the generator link further unit names to the
 *   service.
 */

export const unitKinds = {
  container: { group: 'Container', suffix: '' },
  kube: { group: 'Kube', suffix: '' },
  pod: { group: 'Pod', suffix: '-pod' },
  volume: { group: 'Volume', suffix: '-volume' },
  network: { group: 'Network', suffix: '-network' },
  image: { group: 'Image', suffix: '-image' },
  build: { group: 'Build', suffix: '-build' },
} as const;
export type UnitKind = keyof typeof unitKinds;

/** The kind of a quadlet unit file name, or undefined for any other file. */
export function unitKindOf(fileName: string): UnitKind | undefined {
  const dot = fileName.lastIndexOf('.');
  if (dot < 0) return undefined;
  const ext = fileName.slice(dot + 1);
  return Object.hasOwn(unitKinds, ext) ? (ext as UnitKind) : undefined;
}

/**
 * A unit file name rick accepts: letters, digits, `_`, `.`, `-`, at most one
 * `@` (a template or an instance), not starting with `.`, `-` or `@`.
 */
export const unitFilePattern =
  /^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:@[A-Za-z0-9_.-]*)?\.(?:container|kube|pod|volume|network|image|build)$/;

/** A systemd service name rick accepts as a generated service (same alphabet). */
export const serviceNamePattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:@[A-Za-z0-9_.-]*)?\.service$/;

// Go's unicode.IsSpace, which the parser trims lines with.
const SPACE =
  '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const trimSpace = (s: string) => s.replace(new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, 'g'), '');
const trimRightSpace = (s: string) => s.replace(new RegExp(`[${SPACE}]+$`), '');

/** A unit file as podman's parser reads it: groups of key/value lines, in order. */
export type UnitFileGroups = Map<string, Array<[string, string]>>;

/**
 * Parses a unit file the way podman's parser does, keeping only what a
 * lookup needs. Returns the problem podman would report for a line that is
 * not a comment, a group or a key/value pair.
 */
export function parseUnitFile(
  text: string,
): { ok: true; groups: UnitFileGroups } | { ok: false; problem: string } {
  const groups: UnitFileGroups = new Map();
  let current: Array<[string, string]> | undefined;
  const lines = (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
  let remaining = '';
  for (let i = 0; i < lines.length; i++) {
    let line = trimSpace(lines[i] ?? '');
    const comment = line === '' || line.startsWith('#') || line.startsWith(';');
    // Comments are dropped, also inside a continued line.
    if (comment) continue;
    if (line.endsWith('\\')) {
      line = line.slice(0, -1);
      if (i !== lines.length - 1) {
        remaining += line;
        continue;
      }
    }
    if (remaining !== '') {
      line = remaining + line;
      remaining = '';
    }
    if (line.startsWith('[') && isGroupLine(line)) {
      const name = line.slice(1, line.indexOf(']'));
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what podman refuses
      if (name === '' || /[[\]\u0000-\u001f\u007f-\u009f]/.test(name)) {
        return { ok: false, problem: `line ${i + 1}: invalid group name ${JSON.stringify(name)}` };
      }
      current = groups.get(name);
      if (!current) {
        current = [];
        groups.set(name, current);
      }
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) {
      return {
        ok: false,
        problem: `line ${i + 1} is not a key-value pair, group, or comment`,
      };
    }
    if (!current)
      return { ok: false, problem: `line ${i + 1}: key file does not start with a group` };
    const key = line.slice(0, eq).replace(/[\t\n\v\f\r \u0085\u00a0]+$/, '');
    if (key === '' || key.startsWith(' ') || key.endsWith(' ')) {
      return { ok: false, problem: `line ${i + 1}: invalid key name ${JSON.stringify(key)}` };
    }
    const value = line.slice(eq + 1).replace(/^[\t\n\v\f\r \u0085\u00a0]+/, '');
    current.push([key, value]);
  }
  return { ok: true, groups };
}

function isGroupLine(line: string): boolean {
  const end = line.indexOf(']');
  if (end < 0) return false;
  return /^[ \t]*$/.test(line.slice(end + 1));
}

/** Appends a drop-in's lines to the unit's groups, as podman's Merge does. */
export function mergeUnitFiles(base: UnitFileGroups, dropin: UnitFileGroups): UnitFileGroups {
  const merged: UnitFileGroups = new Map([...base].map(([g, lines]) => [g, [...lines]]));
  for (const [group, lines] of dropin) {
    const target = merged.get(group);
    if (target) target.push(...lines);
    else merged.set(group, [...lines]);
  }
  return merged;
}

/** The last value of a key in a group, trimmed as podman's Lookup trims it. */
export function lookupLast(groups: UnitFileGroups, group: string, key: string): string | undefined {
  const lines = groups.get(group);
  if (!lines) return undefined;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i];
    if (line && line[0] === key) return trimRightSpace(line[1]).replace(/^"+|"+$/g, '');
  }
  return undefined;
}

/** Every value of a key in a group, split on whitespace (for `Alias=` lists). */
export function lookupAllWords(groups: UnitFileGroups, group: string, key: string): string[] {
  return (groups.get(group) ?? [])
    .filter(([k]) => k === key)
    .flatMap(([, v]) => v.split(/\s+/).filter((w) => w !== ''));
}

/** The service quadlet generates for a unit file with these (merged) contents. */
export function serviceNameOf(unitFile: string, groups: UnitFileGroups | undefined): string {
  const kind = unitKindOf(unitFile);
  if (!kind) throw new TypeError(`${unitFile} is not a quadlet unit`);
  const { group, suffix } = unitKinds[kind];
  const named = groups ? lookupLast(groups, group, 'ServiceName') : undefined;
  if (named !== undefined) return `${named}.service`;
  const dot = unitFile.lastIndexOf('.');
  return `${dot > 0 ? unitFile.slice(0, dot) : unitFile}${suffix}.service`;
}

/** The default service name of a unit file (no `ServiceName=`): `x.pod` → `x-pod.service`. */
export function defaultServiceName(unitFile: string): string {
  return serviceNameOf(unitFile, undefined);
}

/**
 * The drop-in directory names podman 5.4 reads for a unit file, most
 * specific first (parser.UnitFile.GetUnitDropinPaths).
 */
export function dropinDirsFor(unitFile: string): string[] {
  const dot = unitFile.lastIndexOf('.');
  const ext = dot >= 0 ? unitFile.slice(dot) : '';
  const base = dot >= 0 ? unitFile.slice(0, dot) : unitFile;
  const at = base.indexOf('@');
  const unitName = at >= 0 ? base.slice(0, at) : base;
  const instance = at >= 0 ? base.slice(at + 1) : '';
  const isTemplate = at >= 0;
  const dropinExt = `${ext}.d`;
  const dirs: string[] = [dropinExt.slice(1)];
  const parts = unitName.split('-');
  if (parts.length > 1) {
    for (let i = 0; i < parts.length - 1; i++) {
      const truncated = `${parts.slice(0, i + 1).join('-')}-`;
      dirs.push(`${truncated}${dropinExt}`);
      if (isTemplate) dirs.push(`${truncated}@${dropinExt}`);
    }
  }
  if (instance !== '') dirs.push(`${unitName}@${dropinExt}`);
  dirs.push(`${unitFile}.d`);
  return dirs.reverse();
}

/** Whether a directory name is one quadlet reads drop-ins from, for some unit. */
export function isDropinDirName(name: string): boolean {
  if (!name.endsWith('.d')) return false;
  return unitKindOf(name.slice(0, -2)) !== undefined || Object.hasOwn(unitKinds, name.slice(0, -2));
}

/**
 * How two service names share systemd's namespace: equal, or one is the
 * template (`x@.service`) the other (`x@i.service`) is an instance of.
 */
export function servicesClash(a: string, b: string): boolean {
  if (a === b) return true;
  const template = (s: string) => {
    const at = s.indexOf('@');
    return at >= 0 ? s.slice(0, at + 1) : undefined;
  };
  const ta = template(a);
  const tb = template(b);
  if (ta === undefined || tb === undefined || ta !== tb) return false;
  // Two different instances of one template do not clash; a template clashes with each.
  return a === `${ta}.service` || b === `${tb}.service`;
}
