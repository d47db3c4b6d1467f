/**
 * A bundle changes only what it created. rick records, per bundle, the users,
 * groups and paths its sysusers.d and tmpfiles.d fragments created on this
 * host, in /var/lib/rick/created.json, and judges every install against it:
 *
 * - a `u` or `g` line naming a user or group that exists already is refused
 *   unless the record says this bundle created it (`u www-data` would
 *   otherwise make the bundle the owner of another service's account);
 * - every path a tmpfiles.d line names, and every directory between its
 *   state root (/var/lib/, /run/, …) and it, must not exist yet or must have
 *   been created by this bundle: `d`, `e`, `f` and `z` all set the mode and
 *   owner of an existing path, so a bundle named `postgresql` must not reach
 *   a /run/postgresql it did not create. A symbolic link on the way is
 *   refused whoever made it.
 *
 * The record is written before systemd-sysusers and systemd-tmpfiles run
 * (names that will be created), never shrinks, and outlives rollbacks and
 * removals: what was created stays on the host, and so does whose it is.
 * When the file is missing (a host installed by an older rick, or the file
 * was removed by hand), the bundles of the live generation adopt, once, the
 * accounts and paths their fragments name that exist now.
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod';
import { bundleNamePattern } from '../../bundle/manifest.js';
import type { SysusersEffects } from '../../bundle/sysusers.js';
import { stateRootOf, type TmpfilesEntry } from '../../bundle/tmpfiles.js';
import '../../bundle/zod.js';
import { describe, RickError } from '../../errors.js';
import { writeFileAtomic } from '../state.js';
import type { Accounts } from './accounts.js';

export interface CreatedRecord {
  users: string[];
  groups: string[];
  /** Host paths (never under --root). */
  paths: string[];
}

export interface CreatedRecords {
  schemaVersion: 1;
  bundles: Record<string, CreatedRecord>;
}

const recordSchema = z.strictObject({
  users: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/)),
  groups: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/)),
  paths: z.array(z.string().regex(/^\/(?:[^/\0]+\/)*[^/\0]+$/)),
});
const recordsSchema = z.strictObject({
  schemaVersion: z.literal(1),
  bundles: z.record(z.string().regex(bundleNamePattern), recordSchema),
});

export function emptyRecords(): CreatedRecords {
  return { schemaVersion: 1, bundles: {} };
}

/** created.json, or undefined when there is none. */
export async function readCreatedRecords(file: string): Promise<CreatedRecords | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RickError('IO_ERROR', `cannot read ${file}: ${describe(error)}`, { cause: error });
  }
  try {
    return recordsSchema.parse(JSON.parse(text)) as CreatedRecords;
  } catch (error) {
    throw new RickError('IO_ERROR', `${file} is not a record of what bundles created`, {
      cause: error,
      hint: 'restore it from a backup, or remove it: the live generation adopts what its bundles name',
    });
  }
}

export async function writeCreatedRecords(file: string, records: CreatedRecords): Promise<void> {
  const sorted: CreatedRecords = { schemaVersion: 1, bundles: {} };
  for (const name of Object.keys(records.bundles).sort()) {
    const r = records.bundles[name] as CreatedRecord;
    sorted.bundles[name] = {
      users: [...new Set(r.users)].sort(),
      groups: [...new Set(r.groups)].sort(),
      paths: [...new Set(r.paths)].sort(),
    };
  }
  await writeFileAtomic(file, `${JSON.stringify(sorted, null, 2)}\n`, 0o644);
}

/** Adds what a bundle is about to create; returns whether anything was new. */
export function addCreated(records: CreatedRecords, bundle: string, add: CreatedRecord): boolean {
  const r = records.bundles[bundle] ?? { users: [], groups: [], paths: [] };
  const before = r.users.length + r.groups.length + r.paths.length;
  r.users = [...new Set([...r.users, ...add.users])];
  r.groups = [...new Set([...r.groups, ...add.groups])];
  r.paths = [...new Set([...r.paths, ...add.paths])];
  records.bundles[bundle] = r;
  return r.users.length + r.groups.length + r.paths.length !== before;
}

function ownerOf(
  records: CreatedRecords,
  kind: 'users' | 'groups' | 'paths',
  name: string,
): string | undefined {
  return Object.entries(records.bundles).find(([, r]) => r[kind].includes(name))?.[0];
}

type PathState = 'missing' | 'symlink' | 'present';

async function pathState(root: string, path: string): Promise<PathState> {
  try {
    const st = await lstat(join(root, path));
    return st.isSymbolicLink() ? 'symlink' : 'present';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
    throw new RickError('IO_ERROR', `cannot inspect ${path}: ${describe(error)}`, { cause: error });
  }
}

/** The path and the directories between its state root and it, outermost first. */
function pathChain(path: string): string[] {
  const root = stateRootOf(path);
  if (root === undefined) return [path];
  const parts = path.slice(root.length).split('/');
  return parts.map((_, i) => `${root}${parts.slice(0, i + 1).join('/')}`);
}

/** tmpfiles.d line types that create what is missing (`e` and `z` only adjust). */
const creates = (type: string) => type.startsWith('d') || type.startsWith('f');

export interface OwnershipInput {
  /** `/`, or the --root tree. */
  root: string;
  bundle: string;
  effects: SysusersEffects;
  tmpfiles: readonly TmpfilesEntry[];
  accounts: Accounts;
  records: CreatedRecords;
}

export interface OwnershipPlan {
  /** What this install creates: recorded before the fragments run. */
  creates: CreatedRecord;
  problems: string[];
}

/** What the bundle's fragments would create, and every existing thing they would touch that is not theirs. */
export async function planOwnership(input: OwnershipInput): Promise<OwnershipPlan> {
  const { bundle, records } = input;
  const problems: string[] = [];
  const plan: CreatedRecord = { users: [], groups: [], paths: [] };
  const notOurs = (what: string, owner: string | undefined) =>
    owner === undefined
      ? `${what} already exists and was not created by bundle ${bundle}`
      : `${what} belongs to bundle ${owner}`;

  for (const created of input.effects.createdBy.values()) {
    const exists =
      created.kind === 'user'
        ? (await input.accounts.user(created.name)) !== undefined
        : (await input.accounts.group(created.name)) !== undefined;
    const kind = created.kind === 'user' ? 'users' : 'groups';
    if (!exists) {
      plan[kind].push(created.name);
      continue;
    }
    const owner = ownerOf(records, kind, created.name);
    if (owner !== bundle) {
      problems.push(`${created.source}: ${notOurs(`${created.kind} ${created.name}`, owner)}`);
    }
  }

  for (const entry of input.tmpfiles) {
    const chain = pathChain(entry.path);
    for (const [i, path] of chain.entries()) {
      const state = await pathState(input.root, path);
      const what = path === entry.path ? path : `${path} (on the way to ${entry.path})`;
      if (state === 'missing') {
        if (creates(entry.type)) plan.paths.push(...chain.slice(i));
        break;
      }
      if (state === 'symlink') {
        problems.push(`${entry.source}: ${what} is a symbolic link`);
        break;
      }
      const owner = ownerOf(records, 'paths', path);
      if (owner !== bundle) {
        problems.push(`${entry.source}: ${notOurs(what, owner)}`);
        break;
      }
    }
  }
  plan.paths = [...new Set(plan.paths)];
  return { creates: plan, problems: [...new Set(problems)] };
}

/** Fragment lines as adoption reads them: leniently, names and paths only. */
function fragmentFields(text: string): string[][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(/\s+/));
}

/**
 * The record adopted for a host without created.json: for each bundle of the
 * live generation, the accounts its `u`/`g` lines name and the paths its
 * tmpfiles.d lines name (with the directories on the way) that exist now.
 */
export async function adoptCreated(
  root: string,
  accounts: Accounts,
  bundles: ReadonlyArray<{
    name: string;
    manifest: { files: ReadonlyArray<{ path: string; kind: string }> };
    files: ReadonlyMap<string, Buffer>;
  }>,
): Promise<CreatedRecords> {
  const records = emptyRecords();
  for (const b of bundles) {
    const r: CreatedRecord = { users: [], groups: [], paths: [] };
    for (const f of b.manifest.files) {
      const text = b.files.get(f.path)?.toString('utf8');
      if (text === undefined) continue;
      if (f.kind === 'sysusers') {
        for (const [type, name = '', id = '-'] of fragmentFields(text)) {
          if (
            (type === 'u' || type === 'u!') &&
            (await accounts.user(name).catch(() => undefined))
          ) {
            r.users.push(name);
          }
          const group = type === 'g' || ((type === 'u' || type === 'u!') && !id.includes(':'));
          if (group && (await accounts.group(name).catch(() => undefined))) r.groups.push(name);
        }
      } else if (f.kind === 'tmpfiles') {
        for (const [type = '', path = ''] of fragmentFields(text)) {
          if (!/^[defz]/.test(type) || !path.startsWith('/')) continue;
          for (const p of pathChain(path)) {
            if ((await pathState(root, p)) === 'present') r.paths.push(p);
          }
        }
      }
    }
    if (r.users.length + r.groups.length + r.paths.length > 0) addCreated(records, b.name, r);
  }
  return records;
}
