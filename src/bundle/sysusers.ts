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
 * Format (sysusers.d(5)): `u NAME ID "GECOS" HOME SHELL`, `g NAME ID`,
 * `m USER GROUP` (`r - FROM-TO` exists but is refused); `#` comments; fields
 * split on whitespace, double quotes group a field.
 *
 * What a fragment may say, whatever host it meets (the host's own rules,
 * which groups a bundle may name at all, are in host/intake/account-policy.ts):
 * - no root and no id 0; no `r` lines (they change id allocation for the
 *   whole host);
 * - an id is `-` (systemd-sysusers allocates one) or a number it takes as a
 *   suggestion (it picks another when the number is taken); a `u` line may
 *   name its primary group as `-:GROUP` or `UID:GROUP`, never by number: as
 *   systemd-sysusers 252 does it, `u evil 990:4001` makes GID 4001 the
 *   user's primary group whatever group holds it. A path in place of an id
 *   (the id of whoever owns that file) is refused too;
 * - `m` lines add only users the bundle's own `u` lines create.
 */
import { RickError } from '../errors.js';
import type { Manifest } from './manifest.js';
import { checkPlaceholderName } from './placeholders.js';

export type SysusersEntry =
  | {
      type: 'u';
      name: string;
      id: string;
      /** The primary group named with `-:GROUP` or `UID:GROUP`; the same-named group otherwise. */
      primaryGroup: string | undefined;
      source: string;
    }
  | { type: 'g'; name: string; id: string; source: string }
  | { type: 'm'; user: string; group: string; source: string };

function splitFields(line: string): string[] | undefined {
  if ((line.match(/"/g)?.length ?? 0) % 2 !== 0) return undefined;
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');
}

const suggestedId = /^[1-9][0-9]{0,9}$/;

/** Why an id field is refused, or undefined; for `u` lines also the named primary group. */
function checkId(
  type: 'u' | 'g',
  id: string,
): { problem: string } | { primaryGroup: string | undefined } {
  if (id === '-' || suggestedId.test(id)) return { primaryGroup: undefined };
  if (/^0+(:|$)/.test(id) || /:0+$/.test(id))
    return { problem: 'a bundle may not define root or id 0' };
  if (id.startsWith('/')) {
    return { problem: `id ${id} takes the id of whoever owns that path; use - or a number` };
  }
  const colon = id.indexOf(':');
  if (type === 'u' && colon > 0) {
    const uid = id.slice(0, colon);
    const group = id.slice(colon + 1);
    if (uid !== '-' && !suggestedId.test(uid))
      return { problem: `invalid id ${JSON.stringify(id)}` };
    if (/^[0-9]+$/.test(group)) {
      return {
        problem: `primary group ${group} is a number, which names whatever group holds that GID; name the group`,
      };
    }
    const problem = checkPlaceholderName('gid', group);
    if (problem) return { problem };
    return { primaryGroup: group };
  }
  return { problem: `invalid id ${JSON.stringify(id)}` };
}

/**
 * Parses one fragment; throws BUNDLE_INVALID listing every bad line (see the
 * header for what is refused).
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
      case 'g': {
        const kind = type === 'g' ? 'g' : 'u';
        if (!checkName(kind === 'g' ? 'gid' : 'uid', name)) return;
        if (name === 'root') {
          problems.push(`${source}: a bundle may not define root or id 0`);
          return;
        }
        const id = checkId(kind, third);
        if ('problem' in id) {
          problems.push(`${source}: ${id.problem}`);
          return;
        }
        entries.push(
          kind === 'u'
            ? { type: 'u', name, id: third, primaryGroup: id.primaryGroup, source }
            : { type: 'g', name, id: third, source },
        );
        return;
      }
      case 'm':
        if (fields.length !== 3) {
          problems.push(`${source}: an m line takes a user and a group`);
          return;
        }
        if (!checkName('uid', name) || !checkName('gid', third)) return;
        if (name === 'root' || third === 'root') {
          problems.push(`${source}: a bundle may not add ${name} to ${third}`);
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

/** One group or user a fragment names, with the line that names it. */
export interface NamedAccount {
  name: string;
  source: string;
}

export interface SysusersEffects {
  /** Users the fragments create (`u` lines), whether or not they exist yet. */
  users: ReadonlySet<string>;
  /** Groups the fragments create (`g` lines, and `u` lines without a named primary group). */
  groups: ReadonlySet<string>;
  /** Groups named as a primary group or by `m` lines without a `u`/`g` line creating them. */
  referencedGroups: ReadonlySet<string>;
  /** Users named by `m` lines without a `u` line creating them. */
  referencedUsers: ReadonlySet<string>;
  memberships: ReadonlyArray<{ user: string; group: string; source: string }>;
  /** Each created user and group with the line creating it (first line wins). */
  createdBy: ReadonlyMap<string, NamedAccount & { kind: 'user' | 'group' }>;
  /** Every group a line names without creating it: `m` groups and primary groups. */
  namedGroups: ReadonlyArray<NamedAccount>;
}

/** What applying these entries would create and what it takes for granted. */
export function sysusersEffects(entries: readonly SysusersEntry[]): SysusersEffects {
  const users = new Set<string>();
  const groups = new Set<string>();
  const named: NamedAccount[] = [];
  const wantedUsers = new Set<string>();
  const memberships: { user: string; group: string; source: string }[] = [];
  const createdBy = new Map<string, NamedAccount & { kind: 'user' | 'group' }>();
  const create = (kind: 'user' | 'group', name: string, source: string) => {
    const key = `${kind}:${name}`;
    if (!createdBy.has(key)) createdBy.set(key, { kind, name, source });
  };
  for (const e of entries) {
    if (e.type === 'u') {
      users.add(e.name);
      create('user', e.name, e.source);
      if (e.primaryGroup === undefined) {
        groups.add(e.name);
        create('group', e.name, e.source);
      } else named.push({ name: e.primaryGroup, source: e.source });
    } else if (e.type === 'g') {
      groups.add(e.name);
      create('group', e.name, e.source);
    } else if (e.type === 'm') {
      memberships.push({ user: e.user, group: e.group, source: e.source });
      named.push({ name: e.group, source: e.source });
      wantedUsers.add(e.user);
    }
  }
  return {
    users,
    groups,
    referencedGroups: new Set(named.map((n) => n.name).filter((g) => !groups.has(g))),
    referencedUsers: new Set([...wantedUsers].filter((u) => !users.has(u))),
    memberships,
    createdBy,
    namedGroups: named,
  };
}

/**
 * Parses every sysusers fragment of a bundle (files of kind `sysusers`) and
 * checks what spans fragments: an `m` line adds only a user the bundle's
 * own `u` lines create (a bundle does not hand other accounts memberships).
 */
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
  const effects = sysusersEffects(entries);
  const foreign = effects.memberships.filter((m) => !effects.users.has(m.user));
  if (foreign.length) {
    throw new RickError(
      'BUNDLE_INVALID',
      `invalid sysusers.d fragment: ${foreign
        .map(
          (m) =>
            `${m.source}: m ${m.user} ${m.group} adds a user the bundle does not create with a u line`,
        )
        .join('; ')}`,
    );
  }
  return effects;
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
