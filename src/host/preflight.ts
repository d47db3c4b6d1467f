/**
 * Pre-flight as the service: before the flip, every container of the
 * installed bundle that mounts a socket is checked as its own UID and
 * supplementary GIDs (`--group-add`; none when it joins no client group)
 * against what it mounts, as the
 * pattern's troubleshooting section tests socket access as the service user
 * (`psql -h /var/run/postgresql -U svc svc_db`, `valkey-cli -s
 * /var/run/valkey/valkey.sock ping`):
 *
 * - a container that mounts PostgreSQL's socket directory logs in to each
 *   database its bundle declares, as its role, through the socket (psql);
 * - a container that mounts Valkey's socket (or its directory) gets an
 *   answer to PING (Node itself speaks the one line of RESP this takes, so
 *   a host needs no valkey-cli).
 *
 * Both run under `setpriv --reuid --regid --groups`, which only drops
 * privileges. A refusal names the socket, the owner and mode of its
 * directory as seen, and the group the container lacks.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { DatabaseDeclaration } from '../bundle/databases.js';
import { parsePodmanFlags, podmanRunFlags, splitArgs } from '../bundle/podman-args.js';
import { lookupLast, parseUnitFile, type UnitFileGroups } from '../bundle/quadlet-units.js';
import { RickError } from '../errors.js';
import type { CommandRunner, RunResult } from '../io/exec.js';
import { psqlMessage } from './database/postgresql.js';
import { POSTGRESQL_PORT, postgresqlSocket, type SocketConfig } from './database/sockets.js';

/** Who a container runs as, and the host paths it mounts. */
export interface ContainerIdentity {
  unit: string;
  uid: number;
  gid: number;
  /** Supplementary GIDs (`--group-add`, `GroupAdd=`). */
  groups: number[];
  /** Host sources of its bind mounts. */
  mounts: string[];
}

function allValues(groups: UnitFileGroups, group: string, key: string): string[] {
  return (groups.get(group) ?? []).filter(([k]) => k === key).map(([, v]) => v.trim());
}

/**
 * The containers of a rendered bundle with a numeric User= `uid[:gid]` (as
 * placeholders render it): their GroupAdd= and PodmanArgs' --group-add (none
 * is a list of none), the sources of Volume= and PodmanArgs' volumes. Pure.
 */
function numericContainers(files: ReadonlyMap<string, Buffer>): ContainerIdentity[] {
  const out: ContainerIdentity[] = [];
  for (const [path, data] of files) {
    if (!path.startsWith('quadlet/') || !path.endsWith('.container')) continue;
    const parsed = parseUnitFile(data.toString('utf8'));
    if (!parsed.ok) continue;
    const g = parsed.groups;
    const user = /^([0-9]+)(?::([0-9]+))?$/.exec(lookupLast(g, 'Container', 'User') ?? '');
    const groups = allValues(g, 'Container', 'GroupAdd').flatMap((v) => v.split(/\s+/));
    const mounts = allValues(g, 'Container', 'Volume').map((v) => v.split(':')[0] ?? '');
    for (const args of allValues(g, 'Container', 'PodmanArgs')) {
      const flags = parsePodmanFlags(splitArgs(args).words, podmanRunFlags).flags;
      for (const f of flags) {
        if (f.name === 'group-add') groups.push(...f.values);
        if (f.name === 'volume') mounts.push(...f.values.map((v) => v.split(':')[0] ?? ''));
      }
    }
    const numeric = groups.filter((x) => /^[0-9]+$/.test(x)).map(Number);
    if (!user) continue;
    const uid = Number(user[1]);
    out.push({
      unit: basename(path),
      uid,
      gid: user[2] === undefined ? uid : Number(user[2]),
      groups: [...new Set(numeric)],
      mounts: mounts.filter((m) => m.startsWith('/')),
    });
  }
  return out;
}

/** The containers of a rendered bundle that join a client group (see numericContainers). Pure. */
export function joiningContainers(files: ReadonlyMap<string, Buffer>): ContainerIdentity[] {
  return numericContainers(files).filter((c) => c.groups.length > 0);
}

/**
 * The containers that mount PostgreSQL's socket directory or Valkey's
 * socket, whether or not they join a client group: one that mounts a socket
 * and forgot its group-add is the mistake the pre-flight is there to catch.
 */
export function socketContainers(
  files: ReadonlyMap<string, Buffer>,
  sockets: SocketConfig,
): ContainerIdentity[] {
  return numericContainers(files).filter((c) =>
    c.mounts.some((m) => covers(m, sockets.postgresqlSocketDir) || covers(m, sockets.valkeySocket)),
  );
}

/** What stat says of a socket's directory. */
export interface DirectoryView {
  uid: number;
  gid: number;
  mode: number;
}

/**
 * Whether `who` may enter the directory (search permission), as the kernel
 * decides for a process without capabilities: the owner's bits for its
 * owner, the group's for a member, the others' for the rest. Pure.
 */
export function maySearch(
  dir: DirectoryView,
  who: Pick<ContainerIdentity, 'uid' | 'gid' | 'groups'>,
): boolean {
  if (who.uid === dir.uid) return (dir.mode & 0o100) !== 0;
  if (who.gid === dir.gid || who.groups.includes(dir.gid)) return (dir.mode & 0o010) !== 0;
  return (dir.mode & 0o001) !== 0;
}

async function groupNames(root: string): Promise<Map<number, string>> {
  const names = new Map<number, string>();
  const text = await readFile(`${root.replace(/\/$/, '')}/etc/group`, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name && gid && /^[0-9]+$/.test(gid) && !names.has(Number(gid)))
      names.set(Number(gid), name);
  }
  return names;
}

async function userNames(root: string): Promise<Map<number, string>> {
  const names = new Map<number, string>();
  const text = await readFile(`${root.replace(/\/$/, '')}/etc/passwd`, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , uid] = line.split(':');
    if (name && uid && /^[0-9]+$/.test(uid) && !names.has(Number(uid)))
      names.set(Number(uid), name);
  }
  return names;
}

function covers(mount: string, path: string): boolean {
  return mount === path || path.startsWith(`${mount.replace(/\/$/, '')}/`);
}

/** One socket a container must reach, and how to ask it. */
interface Probe {
  socket: string;
  /** The pattern's own test, for the hint. */
  test: string;
  run: () => Promise<RunResult>;
}

/** Node's one-line RESP client: PING, print the answer; any answer means the server is reached. */
const PING_SCRIPT = [
  "const s = require('net').createConnection(process.argv[1]);",
  "let d = '';",
  "s.setTimeout(10000, () => { console.error('no answer within 10s'); process.exit(2); });",
  "s.on('connect', () => s.write('PING\\r\\n'));",
  "s.on('data', (c) => { d += c; if (d.includes('\\r\\n')) { console.log(d.trim()); s.destroy(); } });",
  "s.on('error', (e) => { console.error(e.code + ': ' + e.message); process.exit(1); });",
].join('\n');

export interface PreflightInput {
  runner: CommandRunner;
  sockets: SocketConfig;
  /** The host tree's root, to name groups and users by /etc/group and /etc/passwd. */
  root: string;
  bundle: string;
  files: ReadonlyMap<string, Buffer>;
  databases: readonly DatabaseDeclaration[];
  /** The declared passwords' values, by secret name. */
  secrets: ReadonlyMap<string, string>;
  log: (line: string) => void;
}

/**
 * Checks every container that mounts a socket (socketContainers); throws PREFLIGHT_FAILED
 * naming every refusal at once.
 */
export async function preflight(input: PreflightInput): Promise<void> {
  const containers = socketContainers(input.files, input.sockets);
  if (containers.length === 0) return;
  const [groups, users] = await Promise.all([groupNames(input.root), userNames(input.root)]);
  const groupName = (gid: number) => groups.get(gid) ?? `gid ${gid}`;
  const userName = (uid: number) => users.get(uid) ?? `uid ${uid}`;
  const pgDir = input.sockets.postgresqlSocketDir;
  const valkey = input.sockets.valkeySocket;
  const refusals: string[] = [];
  const hints: string[] = [];
  let checked = 0;
  for (const c of containers) {
    // No supplementary group is what such a container has: none of root's.
    const groupsFlag = c.groups.length ? `--groups=${c.groups.join(',')}` : '--clear-groups';
    const setpriv = [`--reuid=${c.uid}`, `--regid=${c.gid}`, groupsFlag, '--'];
    const asService = `setpriv --reuid=${c.uid} --regid=${c.gid} ${groupsFlag}`;
    const probes: Probe[] = [];
    if (c.mounts.some((m) => covers(m, pgDir))) {
      for (const d of input.databases) {
        const password = input.secrets.get(d.password) ?? '';
        probes.push({
          socket: postgresqlSocket(input.sockets),
          test: `${asService} psql -h ${pgDir} -U ${d.owner} ${d.postgresql}`,
          run: () =>
            input.runner.run(
              'setpriv',
              [
                ...setpriv,
                'psql',
                '-X',
                '-q',
                '-A',
                '-t',
                '-w',
                '-h',
                pgDir,
                '-p',
                String(POSTGRESQL_PORT),
                '-U',
                d.owner,
                '-d',
                d.postgresql,
                '-c',
                'SELECT 1',
              ],
              {
                // The password in psql's environment, readable by root and the service user only.
                env: {
                  PATH: process.env.PATH ?? '/usr/bin:/bin',
                  LC_ALL: 'C',
                  PGPASSWORD: password,
                  PGCONNECT_TIMEOUT: '10',
                },
                timeoutMs: 60_000,
              },
            ),
        });
      }
    }
    if (c.mounts.some((m) => covers(m, valkey))) {
      probes.push({
        socket: valkey,
        test: `${asService} valkey-cli -s ${valkey} ping`,
        run: () =>
          input.runner.run('setpriv', [...setpriv, process.execPath, '-e', PING_SCRIPT, valkey], {
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
            timeoutMs: 30_000,
          }),
      });
    }
    for (const probe of probes) {
      checked++;
      const who = `${c.unit} (uid ${c.uid} ${userName(c.uid)}, groups ${[c.gid, ...c.groups].map((g) => `${g} ${groupName(g)}`).join(', ')})`;
      const dir = dirname(probe.socket);
      const seen = await stat(dir).catch(() => undefined);
      if (!seen) {
        refusals.push(`${who} cannot reach ${probe.socket}: ${dir} does not exist`);
        hints.push(`is the server running? test as the service user: ${probe.test}`);
        continue;
      }
      const view: DirectoryView = { uid: seen.uid, gid: seen.gid, mode: seen.mode & 0o7777 };
      const seenText = `${dir} is ${userName(view.uid)}:${groupName(view.gid)} mode ${view.mode.toString(8).padStart(4, '0')}`;
      if (!maySearch(view, c)) {
        const missing = (view.mode & 0o010) !== 0 ? groupName(view.gid) : undefined;
        refusals.push(
          `${who} cannot reach ${probe.socket}: permission denied: ${seenText}${missing ? `, and the container is not in group ${missing} (gid ${view.gid})` : ''}`,
        );
        hints.push(
          missing
            ? `add the container to ${missing}: PodmanArgs=--group-add {{ gid("${missing}") }} (and GROUPS=${missing} in its grant); then test as the service user: ${probe.test}`
            : `the directory admits no group: chmod 0770 ${dir} and chgrp it to the client group; then test as the service user: ${probe.test}`,
        );
        continue;
      }
      const result = await probe.run();
      if (result.code !== 0) {
        refusals.push(`${who} cannot use ${probe.socket} (${seenText}): ${psqlMessage(result)}`);
        hints.push(`test as the service user: ${probe.test}`);
      }
    }
  }
  if (refusals.length) {
    throw new RickError(
      'PREFLIGHT_FAILED',
      `pre-flight of ${input.bundle}: ${refusals.join('; ')}`,
      { hint: `nothing went live; ${[...new Set(hints)].join('; ')}` },
    );
  }
  if (checked) input.log(`pre-flight: ${checked} socket check(s) passed as the services' users`);
}
