/**
 * `/etc/rick/policy.d/<bundle>.conf`: what this host grants a bundle beyond
 * the `restricted` profile. A bundle without a file is granted nothing.
 *
 *   # /etc/rick/policy.d/authentik.conf
 *   PROFILE=restricted                 # or privileged: no rule applies
 *   GROUPS=postgres-clients valkey-clients
 *   PATHS=/var/lib/authentik:rw /var/run/postgresql:rw /var/run/valkey:rw
 *   DATABASES=postgresql:authentik     # databases and roles the installer creates
 *   SITES=http://:80                   # Caddy catch-all or path-prefixed site addresses
 *
 * The format is rick.conf's (`KEY=value`, `#` comments, values optionally
 * quoted), with list keys that may be repeated and add up, so that
 * `rick-install --grant` appends what an operator accepted without touching
 * what was written before. Unknown keys and malformed values are refused,
 * every problem at once. Like the trusted keys, the file must belong to root
 * and be writable by no one else: whoever can write it can grant anything.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import {
  canonicalNeeds,
  emptyNeeds,
  formatNeed,
  minimalNeeds,
  type Need,
  type NeedKind,
  type Needs,
  needKinds,
  needValueProblem,
} from '../../bundle/needs.js';
import { describe, RickError } from '../../errors.js';
import { writeFileAtomic } from '../state.js';
import { checkGrantDirs } from './grant-dirs.js';
import { grantFileFor } from './grant-path.js';

export { grantFileFor, POLICY_DIR } from './grant-path.js';

/** Grant-file keys of each need kind. */
export const grantKeys: Record<NeedKind, string> = {
  groups: 'GROUPS',
  users: 'USERS',
  paths: 'PATHS',
  ports: 'PORTS',
  capabilities: 'CAPABILITIES',
  devices: 'DEVICES',
  namespaces: 'NAMESPACES',
  sysctls: 'SYSCTLS',
  unconfined: 'UNCONFINED',
  service: 'SERVICE',
  secrets: 'SECRETS',
  volumes: 'VOLUMES',
  units: 'UNITS',
  databases: 'DATABASES',
  sites: 'SITES',
};

export const profiles = ['restricted', 'privileged'] as const;
export type Profile = (typeof profiles)[number];

export interface Grant {
  /** The file it was read from, for messages. */
  file: string;
  /** Whether the file exists (a missing file grants nothing). */
  exists: boolean;
  profile: Profile;
  /** What it grants; `privileged` is set by PROFILE=privileged. */
  needs: Needs;
  /** The file's text ('' when absent), to tell later whether it changed. */
  text: string;
  /**
   * The sha256 of the file's bytes as read (readGrant; absent for a missing
   * file or a text parsed alone): an install judges the grant before the
   * lock and checks under it that the file is still the one judged.
   */
  digest?: string;
}

/** Parses a grant file's text; throws CONFIG_INVALID naming every problem. */
export function parseGrant(text: string, file: string): Grant {
  const needs = emptyNeeds();
  let profile: Profile | undefined;
  const problems: string[] = [];
  const kindOf = new Map(Object.entries(grantKeys).map(([kind, key]) => [key, kind as NeedKind]));
  text.split('\n').forEach((raw, index) => {
    const at = `line ${index + 1}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) {
      problems.push(`${at}: expected KEY=value`);
      return;
    }
    const key = m[1]!;
    let value = m[2]!.trim();
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
      value = value.slice(1, -1);
    } else if (value.includes(' #')) {
      value = value.slice(0, value.indexOf(' #')).trim();
    }
    if (key === 'PROFILE') {
      if (profile !== undefined) problems.push(`${at}: PROFILE is set twice`);
      else if ((profiles as readonly string[]).includes(value)) profile = value as Profile;
      else problems.push(`${at}: PROFILE must be ${profiles.join(' or ')}`);
      return;
    }
    const kind = kindOf.get(key);
    if (!kind) {
      problems.push(`${at}: unknown key ${key}`);
      return;
    }
    for (const item of value.split(/[\s,]+/).filter(Boolean)) {
      const problem = needValueProblem(kind, item);
      if (problem) problems.push(`${at}: ${key} ${JSON.stringify(item)} ${problem}`);
      else needs[kind].push(item);
    }
  });
  if (problems.length) {
    throw new RickError('CONFIG_INVALID', `${file}: ${problems.join('; ')}`, {
      hint: 'fix the grant; keys and values are listed in docs/policy.md',
    });
  }
  const canonical = canonicalNeeds(needs);
  canonical.privileged = profile === 'privileged';
  return { file, exists: true, profile: profile ?? 'restricted', needs: canonical, text };
}

const MAX_GRANT_BYTES = 256 * 1024;

/**
 * Reads a bundle's grant; a missing file grants nothing. With `requireOwner`
 * (root, on a host), a file or directory owned by someone else or writable
 * by group or others is refused: the file, and each directory from /etc down
 * (src/host/policy/grant-dirs.ts).
 */
export async function readGrant(
  root: string,
  bundle: string,
  options: { requireOwner?: number } = {},
): Promise<Grant> {
  const file = grantFileFor(root, bundle);
  await checkGrantDirs(root, options.requireOwner);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      return { file, exists: false, profile: 'restricted', needs: emptyNeeds(), text: '' };
    }
    throw new RickError('CONFIG_INVALID', `cannot read ${file}: ${describe(error)}`, {
      hint: code === 'ELOOP' ? 'the grant must be a regular file, not a symbolic link' : undefined,
      cause: error,
    });
  }
  try {
    const st = await handle.stat();
    const problems: string[] = [];
    if (!st.isFile()) problems.push('is not a regular file');
    if (st.mode & 0o022)
      problems.push(`is writable by ${st.mode & 0o002 ? 'others' : 'its group'}`);
    if (options.requireOwner !== undefined && st.uid !== options.requireOwner) {
      problems.push(`belongs to uid ${st.uid}, not root`);
    }
    if (st.size > MAX_GRANT_BYTES) problems.push(`is larger than ${MAX_GRANT_BYTES} bytes`);
    if (problems.length) {
      throw new RickError('CONFIG_INVALID', `${file} ${problems.join(', ')}`, {
        hint: `whoever can write a grant can grant anything: chown root:root ${file} && chmod 0644 ${file}`,
      });
    }
    const bytes = await handle.readFile();
    const digest = createHash('sha256').update(bytes).digest('hex');
    return { ...parseGrant(bytes.toString('utf8'), file), digest };
  } finally {
    await handle.close();
  }
}

/**
 * The lines that grant `needs`, one key per kind, as an operator would write
 * them: a need another one covers (a directory below a granted one) is not
 * named again.
 */
export function grantLines(all: readonly Need[]): string[] {
  const needs = minimalNeeds(all);
  const lines: string[] = [];
  if (needs.some((n) => n.kind === 'privileged')) lines.push('PROFILE=privileged');
  for (const kind of needKinds) {
    const values = needs
      .filter((n) => n.kind === kind)
      .map((n) => (n as { value: string }).value)
      .sort();
    if (values.length) lines.push(`${grantKeys[kind]}=${values.join(' ')}`);
  }
  return lines;
}

/**
 * Adds `needs` to a bundle's grant file: appended below what is there (a
 * comment saying when and for which version), written atomically, root-owned
 * 0644. PROFILE=privileged replaces an earlier PROFILE line.
 */
export async function appendGrant(
  grant: Grant,
  needs: readonly Need[],
  note: string,
): Promise<string> {
  const add = grantLines(needs);
  let base = grant.text;
  if (add.includes('PROFILE=privileged')) {
    base = base
      .split('\n')
      .filter((l) => !/^\s*PROFILE=/.test(l))
      .join('\n');
  }
  if (base !== '' && !base.endsWith('\n')) base += '\n';
  const header =
    base === ''
      ? `# What this host grants the bundle beyond the restricted profile (docs/policy.md).\n`
      : '';
  const text = `${header}${base}# ${note}\n${add.join('\n')}\n`;
  parseGrant(text, grant.file);
  await mkdir(join(grant.file, '..'), { recursive: true, mode: 0o755 });
  await writeFileAtomic(grant.file, text, 0o644);
  return text;
}

export function describeGrant(grant: Grant): string {
  if (!grant.exists) return `${grant.file} (none: the restricted profile alone)`;
  const list = [
    ...needKinds.flatMap((kind) => grant.needs[kind].map((value) => formatNeed({ kind, value }))),
  ];
  return `${grant.file}: profile ${grant.profile}${list.length ? `, ${list.join(', ')}` : ''}`;
}
