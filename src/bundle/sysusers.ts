/**
 * What a bundle's sysusers.d fragments will do to the account database,
 * decided before anything runs. Pure.
 *
 * Why it matters: `systemd-sysusers` creates whatever a fragment names. An
 * `m authentik postgres-clients` line on a host where `postgres-clients` does
 * not exist yet silently creates that group with a random GID, and the
 * database socket directory (owned by the real group, created later by the
 * database's own setup) would then never be reachable. So every group a
 * bundle uses but does not itself create with `u`/`g` must already exist
 * before the bundle's fragments are applied.
 *
 * Format (sysusers.d(5)): `u[!] NAME ID "GECOS" HOME SHELL`, `g NAME ID`,
 * `m USER GROUP` (`r - FROM-TO` exists but is refused); `#` comments; fields split on whitespace,
 * double quotes group a field.
 */
import { RickError } from '../errors.js';
import type { Manifest } from './manifest.js';
import { checkPlaceholderName } from './placeholders.js';

export type SysusersEntry =
  | { type: 'u'; name: string; id: string; source: string }
  | { type: 'g'; name: string; id: string; source: string }
  | { type: 'm'; user: string; group: string; source: string };

function splitFields(line: string): string[] | undefined {
  if ((line.match(/"/g)?.length ?? 0) % 2 !== 0) return undefined;
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');
}

/**
 * Groups whose membership is as good as root (sudo rights, raw disks, kernel
 * memory, password hashes, a container engine's socket). A service never
 * needs them, and a compromised build must not be able to grant them: not
 * through a sysusers `m` line, and not as a `--group-add` GID.
 */
export const privilegedGroups: ReadonlySet<string> = new Set([
  'root',
  'wheel',
  'sudo',
  'admin',
  'disk',
  'kmem',
  'shadow',
  'docker',
  'lxd',
  'libvirt',
]);

function isRootId(id: string): boolean {
  return id.split(':').some((part) => /^0+$/.test(part));
}

/**
 * Parses one fragment; throws BUNDLE_INVALID listing every bad line. Besides
 * syntax, it refuses what a service bundle has no business doing: root
 * accounts or id 0, membership in privileged groups, and `r` lines (which
 * change id allocation for the whole host).
 */
export function parseSysusers(text: string, file: string): SysusersEntry[] {
  const entries: SysusersEntry[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((raw, index) => {
    const source = `${file}:${index + 1}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = splitFields(line);
    if (!fields) {
      problems.push(`${source}: unbalanced quote`);
      return;
    }
    const [type = '', name = '', third = '-'] = fields;
    const checkName = (kind: 'uid' | 'gid', value: string) => {
      const problem = checkPlaceholderName(kind, value);
      if (problem) problems.push(`${source}: ${problem}`);
      return !problem;
    };
    switch (type) {
      case 'u':
      case 'u!':
      case 'g':
        if (!checkName(type === 'g' ? 'gid' : 'uid', name)) return;
        if (name === 'root' || isRootId(third)) {
          problems.push(`${source}: a bundle may not define root or id 0`);
          return;
        }
        entries.push({ type: type === 'g' ? 'g' : 'u', name, id: third, source });
        return;
      case 'm':
        if (fields.length !== 3) {
          problems.push(`${source}: an m line takes a user and a group`);
          return;
        }
        if (!checkName('uid', name) || !checkName('gid', third)) return;
        if (privilegedGroups.has(third) || name === 'root') {
          problems.push(`${source}: a bundle may not add ${name} to the privileged group ${third}`);
          return;
        }
        entries.push({ type: 'm', user: name, group: third, source });
        return;
      case 'r':
        problems.push(`${source}: r lines change id allocation for the whole host`);
        return;
      default:
        problems.push(`${source}: unknown line type ${JSON.stringify(type)}`);
    }
  });
  if (problems.length) {
    throw new RickError('BUNDLE_INVALID', `invalid sysusers.d fragment: ${problems.join('; ')}`);
  }
  return entries;
}

export interface SysusersEffects {
  /** Users that exist after the fragments are applied, whether new or not. */
  users: ReadonlySet<string>;
  /** Groups the fragments create (u lines create a same-named group unless given one). */
  groups: ReadonlySet<string>;
  /** Groups named as a primary group or by `m` lines without a `u`/`g` line creating them. */
  referencedGroups: ReadonlySet<string>;
  /** Users named by `m` lines without a `u` line creating them. */
  referencedUsers: ReadonlySet<string>;
  memberships: ReadonlyArray<{ user: string; group: string }>;
}

/** What applying these entries would create and what it takes for granted. */
export function sysusersEffects(entries: readonly SysusersEntry[]): SysusersEffects {
  const users = new Set<string>();
  const groups = new Set<string>();
  const wantedGroups = new Set<string>();
  const wantedUsers = new Set<string>();
  const memberships: { user: string; group: string }[] = [];
  for (const e of entries) {
    if (e.type === 'u') {
      users.add(e.name);
      const colon = e.id.indexOf(':');
      const group = colon >= 0 ? e.id.slice(colon + 1) : '';
      if (group === '' || group === '-') groups.add(e.name);
      else if (!/^[0-9]+$/.test(group)) wantedGroups.add(group);
    } else if (e.type === 'g') {
      groups.add(e.name);
    } else if (e.type === 'm') {
      memberships.push({ user: e.user, group: e.group });
      wantedGroups.add(e.group);
      wantedUsers.add(e.user);
    }
  }
  return {
    users,
    groups,
    referencedGroups: new Set([...wantedGroups].filter((g) => !groups.has(g))),
    referencedUsers: new Set([...wantedUsers].filter((u) => !users.has(u))),
    memberships,
  };
}

/** Parses every sysusers fragment of a bundle (files of kind `sysusers`). */
export function bundleSysusers(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
): SysusersEffects {
  const entries: SysusersEntry[] = [];
  for (const f of manifest.files) {
    if (f.kind !== 'sysusers') continue;
    const data = files.get(f.path);
    if (data) entries.push(...parseSysusers(data.toString('utf8'), f.path));
  }
  return sysusersEffects(entries);
}

export interface RequiredAccounts {
  /** Groups that must exist before the bundle's fragments run. */
  groups: string[];
  /** Users that must exist before the bundle's fragments run. */
  users: string[];
}

/**
 * Accounts the host must already have: every `gid`/`uid` fact and every group
 * or user a fragment refers to, minus what the bundle's own `u`/`g` lines create.
 */
export function requiredExistingAccounts(
  manifest: Manifest,
  effects: SysusersEffects,
): RequiredAccounts {
  const groups = new Set(effects.referencedGroups);
  const users = new Set(effects.referencedUsers);
  for (const fact of manifest.facts) {
    if (fact.kind === 'gid' && !effects.groups.has(fact.name)) groups.add(fact.name);
    if (fact.kind === 'uid' && !effects.users.has(fact.name)) users.add(fact.name);
  }
  return { groups: [...groups].sort(), users: [...users].sort() };
}

/** Refuses `gid` facts naming a privileged group (e.g. `--group-add @@rick:gid:docker@@`). */
export function checkFactPolicy(manifest: Manifest): void {
  const bad = manifest.facts
    .filter((f) => f.kind === 'gid' && privilegedGroups.has(f.name))
    .map((f) => f.name);
  if (bad.length) {
    throw new RickError(
      'BUNDLE_INVALID',
      `bundle ${manifest.name} asks for the GID of privileged group(s) ${bad.join(', ')}, which a service may not be given`,
    );
  }
}
