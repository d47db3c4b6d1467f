/**
 * The user and group database, as a port. On a live host the lookups go
 * through `getent` so that every NSS source (files, LDAP, sssd) answers; with
 * `--root DIR` they read DIR/etc/passwd and DIR/etc/group directly, because an
 * offline image tree has no name service of its own.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkPlaceholderName } from '../../bundle/placeholders.js';
import { describe, RickError } from '../../errors.js';
import type { CommandRunner } from '../../io/exec.js';

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface UserEntry {
  name: string;
  uid: number;
  /** Primary group. */
  gid: number;
}

export interface Accounts {
  /** The group, or undefined when no such group exists. */
  group(name: string): Promise<GroupEntry | undefined>;
  /** The user, or undefined when no such user exists. */
  user(name: string): Promise<UserEntry | undefined>;
}

/** Highest id a Linux account can have; (uid_t)-1 means "none". */
const MAX_ID = 0xfffffffe;

function parseId(text: string | undefined): number | undefined {
  if (text === undefined || !/^[0-9]{1,10}$/.test(text)) return undefined;
  const id = Number(text);
  return id <= MAX_ID ? id : undefined;
}

/**
 * Names reach getent as an argument: check them first, so that a name can
 * never be read as an option (`-s`) or as a numeric id (`getent group 0`).
 */
function checkName(kind: 'gid' | 'uid', name: string): void {
  const problem = checkPlaceholderName(kind, name);
  if (problem) throw new RickError('FACT_MISSING', `cannot look up ${problem}`);
}

/** Parses one `/etc/group` line (`name:x:gid:a,b`). */
export function parseGroupLine(line: string): GroupEntry | undefined {
  const fields = line.split(':');
  if (fields.length !== 4) return undefined;
  const [name, , gidText, members] = fields;
  const gid = parseId(gidText);
  if (!name || gid === undefined) return undefined;
  return { name, gid, members: members ? members.split(',').filter(Boolean) : [] };
}

/** Parses one `/etc/passwd` line (`name:x:uid:gid:gecos:home:shell`). */
export function parsePasswdLine(line: string): UserEntry | undefined {
  const fields = line.split(':');
  if (fields.length !== 7) return undefined;
  const [name, , uidText, gidText] = fields;
  const uid = parseId(uidText);
  const gid = parseId(gidText);
  if (!name || uid === undefined || gid === undefined) return undefined;
  return { name, uid, gid };
}

function malformed(what: string, name: string, source: string): RickError {
  return new RickError('FACT_MISSING', `${what} ${name} has a malformed entry in ${source}`);
}

/** Looks accounts up with `getent` (exit 2 means "no such entry"). */
export function getentAccounts(runner: CommandRunner): Accounts {
  async function lookup(database: 'group' | 'passwd', name: string): Promise<string | undefined> {
    const result = await runner.run('getent', [database, name], { timeoutMs: 30_000 });
    if (result.code === 2) return undefined;
    if (result.code !== 0) {
      const detail = result.stderr.trim() || (result.signal ?? `exit ${result.code}`);
      throw new RickError('IO_ERROR', `getent ${database} ${name} failed: ${detail}`);
    }
    const line = result.stdout.split('\n')[0] ?? '';
    return line;
  }
  return {
    async group(name) {
      checkName('gid', name);
      const line = await lookup('group', name);
      if (line === undefined) return undefined;
      const entry = parseGroupLine(line);
      if (!entry) throw malformed('group', name, 'getent');
      // Some NSS backends match case-insensitively; a different group is not this one.
      return entry.name === name ? entry : undefined;
    },
    async user(name) {
      checkName('uid', name);
      const line = await lookup('passwd', name);
      if (line === undefined) return undefined;
      const entry = parsePasswdLine(line);
      if (!entry) throw malformed('user', name, 'getent');
      return entry.name === name ? entry : undefined;
    },
  };
}

async function readDatabase(path: string): Promise<string[]> {
  try {
    return (await readFile(path, 'utf8')).split('\n');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new RickError('IO_ERROR', `cannot read ${path}: ${describe(error)}`, { cause: error });
  }
}

/**
 * Reads DIR/etc/group and DIR/etc/passwd on every call (systemd-sysusers may
 * add entries between two lookups). The first entry of a name wins, as with
 * NSS `files`. A missing database file holds no entries.
 */
export function fileAccounts(rootDir: string): Accounts {
  const groupFile = join(rootDir, 'etc/group');
  const passwdFile = join(rootDir, 'etc/passwd');
  async function find(path: string, name: string): Promise<string | undefined> {
    for (const line of await readDatabase(path)) {
      if (line.startsWith(`${name}:`)) return line;
    }
    return undefined;
  }
  return {
    async group(name) {
      checkName('gid', name);
      const line = await find(groupFile, name);
      if (line === undefined) return undefined;
      const entry = parseGroupLine(line);
      if (!entry) throw malformed('group', name, groupFile);
      return entry;
    },
    async user(name) {
      checkName('uid', name);
      const line = await find(passwdFile, name);
      if (line === undefined) return undefined;
      const entry = parsePasswdLine(line);
      if (!entry) throw malformed('user', name, passwdFile);
      return entry;
    },
  };
}
