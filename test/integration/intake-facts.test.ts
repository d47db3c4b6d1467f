import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileAccounts, getentAccounts } from '../../src/host/intake/accounts.js';
import { checkRequiredAccounts, resolveFacts } from '../../src/host/intake/facts.js';
import { readSecretsFile, readSecretsFileIfPresent } from '../../src/host/intake/secrets.js';
import type { CommandRunner, RunResult } from '../../src/io/exec.js';
import { buildTestBundle } from '../helpers/bundle-factory.js';
import { asyncRefusal } from '../helpers/hostile-tar.js';
import { expectTreeUnchanged, snapshotTree } from '../helpers/tree-snapshot.js';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'rick-facts-'));
  await mkdir(join(root, 'etc'));
  await writeFile(
    join(root, 'etc/group'),
    'root:x:0:\n# comment\npostgres-clients:x:117:authentik,demo\ndemo:x:990:\nbroken:x:notanumber:\n',
  );
  await writeFile(
    join(root, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\ndemo:x:990:990:Demo:/var/lib/demo:/usr/sbin/nologin\n',
  );
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A getent at the process edge: answers from a table, records every call. */
function fakeGetent(
  table: Record<string, string>,
  failWith?: RunResult,
): CommandRunner & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    async run(command, args) {
      calls.push([command, ...args]);
      if (failWith) return failWith;
      const line = table[`${args[0]} ${args[1]}`];
      return line === undefined
        ? { code: 2, signal: null, stdout: '', stderr: '' }
        : { code: 0, signal: null, stdout: `${line}\n`, stderr: '' };
    },
  };
}

describe('accounts', () => {
  it('reads groups and users from a --root tree', async () => {
    const accounts = fileAccounts(root);
    expect(await accounts.group('postgres-clients')).toEqual({
      name: 'postgres-clients',
      gid: 117,
      members: ['authentik', 'demo'],
    });
    expect(await accounts.user('demo')).toEqual({ name: 'demo', uid: 990, gid: 990 });
    expect(await accounts.group('valkey-clients')).toBeUndefined();
    expect(await accounts.user('nobody')).toBeUndefined();
    await expect(accounts.group('broken')).rejects.toThrow(/group broken has a malformed entry/);
  });

  it('treats a tree without /etc/group as having no groups', async () => {
    expect(await fileAccounts(join(root, 'empty')).group('root')).toBeUndefined();
  });

  it('asks getent, reading exit 2 as "not found"', async () => {
    const runner = fakeGetent({
      'group postgres-clients': 'postgres-clients:x:117:authentik',
      'passwd authentik': 'authentik:x:991:991:Authentik:/:/usr/sbin/nologin',
    });
    const accounts = getentAccounts(runner);
    expect(await accounts.group('postgres-clients')).toEqual({
      name: 'postgres-clients',
      gid: 117,
      members: ['authentik'],
    });
    expect(await accounts.user('authentik')).toEqual({ name: 'authentik', uid: 991, gid: 991 });
    expect(await accounts.group('valkey-clients')).toBeUndefined();
    expect(runner.calls).toEqual([
      ['getent', 'group', 'postgres-clients'],
      ['getent', 'passwd', 'authentik'],
      ['getent', 'group', 'valkey-clients'],
    ]);
  });

  it('does not take a case-insensitive NSS match for the group asked for', async () => {
    const accounts = getentAccounts(
      fakeGetent({ 'group Postgres-Clients': 'postgres-clients:x:117:' }),
    );
    expect(await accounts.group('Postgres-Clients')).toBeUndefined();
  });

  it('never passes a name getent could read as an option or a number', async () => {
    const runner = fakeGetent({});
    const accounts = getentAccounts(runner);
    for (const name of ['-s', '0', '../x', '']) {
      await expect(accounts.group(name)).rejects.toThrow(/cannot look up invalid gid name/);
    }
    expect(runner.calls).toEqual([]);
  });

  it('reports a failing getent as an I/O error, not as a missing group', async () => {
    const accounts = getentAccounts(
      fakeGetent({}, { code: 1, signal: null, stdout: '', stderr: 'sssd unreachable' }),
    );
    const error = await asyncRefusal(() => accounts.group('postgres-clients'));
    expect(error.code).toBe('IO_ERROR');
    expect(error.message).toBe('getent group postgres-clients failed: sssd unreachable');
  });
});

describe('secrets file', () => {
  it('reads a 0600 file owned by the required owner', async () => {
    const path = join(root, 'demo.env');
    await writeFile(path, 'db_password=s3cret\n', { mode: 0o600 });
    const secrets = await readSecretsFile(path, { requireOwner: process.getuid?.() ?? 0 });
    expect(secrets.get('db_password')).toBe('s3cret');
  });

  it('refuses a file owned by someone else', async () => {
    const path = join(root, 'demo.env');
    await writeFile(path, 'db_password=s3cret\n', { mode: 0o600 });
    const other = (process.getuid?.() ?? 0) + 4242;
    const error = await asyncRefusal(() => readSecretsFile(path, { requireOwner: other }));
    expect(error.code).toBe('SECRETS_INSECURE');
    expect(error.message).toMatch(new RegExp(`is owned by uid \\d+, not ${other}$`));
  });

  it('judges the file a symlink points to, not the link', async () => {
    const target = join(root, 'real.env');
    await writeFile(target, 'A=1\n', { mode: 0o644 });
    await chmod(target, 0o644);
    await symlink(target, join(root, 'link.env'));
    const error = await asyncRefusal(() => readSecretsFile(join(root, 'link.env')));
    expect(error.code).toBe('SECRETS_INSECURE');
  });

  it('refuses a FIFO without hanging on it', async () => {
    const fifo = join(root, 'fifo.env');
    execFileSync('mkfifo', ['-m', '0600', fifo]);
    const error = await asyncRefusal(() => readSecretsFile(fifo));
    expect(error.message).toBe(`secrets file ${fifo} is not a regular file`);
  });

  it('names a missing file, or reports it absent when the caller allows that', async () => {
    const path = join(root, 'etc/rick/secrets/demo.env');
    expect(await readSecretsFileIfPresent(path)).toBeUndefined();
    const error = await asyncRefusal(() => readSecretsFile(path));
    expect(error.code).toBe('FACT_MISSING');
    expect(error.message).toBe(`secrets file ${path} does not exist`);
  });
});

describe('resolveFacts', () => {
  it('resolves every fact to its host value', async () => {
    const { manifest } = buildTestBundle();
    const facts = await resolveFacts(
      manifest,
      fileAccounts(root),
      new Map([['db_password', 'pw']]),
    );
    expect([...facts].sort()).toEqual([
      ['gid:demo', '990'],
      ['gid:postgres-clients', '117'],
      ['secret:db_password', 'pw'],
      ['uid:demo', '990'],
    ]);
  });

  it('reports every missing fact in one error', async () => {
    await writeFile(join(root, 'etc/group'), 'root:x:0:\n');
    await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    const before = await snapshotTree(root);
    const { manifest } = buildTestBundle();
    const error = await asyncRefusal(() =>
      resolveFacts(manifest, fileAccounts(root), new Map(), {
        secretsPath: '/etc/rick/secrets/demo.env',
      }),
    );
    expect(error.code).toBe('FACT_MISSING');
    expect(error.message).toBe(
      'missing host facts: group demo, group postgres-clients, user demo, secret db_password (in /etc/rick/secrets/demo.env)',
    );
    await expectTreeUnchanged(root, before);
  });

  it('resolves accounts the bundle will create to a marker for plans', async () => {
    await writeFile(join(root, 'etc/group'), 'postgres-clients:x:117:\n');
    await writeFile(join(root, 'etc/passwd'), '');
    const { manifest } = buildTestBundle();
    const facts = await resolveFacts(
      manifest,
      fileAccounts(root),
      new Map([['db_password', 'pw']]),
      {
        pending: { users: new Set(['demo']), groups: new Set(['demo']) },
      },
    );
    expect(facts.get('uid:demo')).toBe('(allocated by systemd-sysusers)');
    expect(facts.get('gid:postgres-clients')).toBe('117');
  });
});

describe('checkRequiredAccounts', () => {
  it('passes when every group the bundle does not create exists', async () => {
    const fragment = 'u demo -\nm demo postgres-clients\n';
    const { manifest } = buildTestBundle({
      files: [
        {
          path: 'quadlet/demo.container',
          content: 'User=@@rick:uid:demo@@\nPodmanArgs=--group-add @@rick:gid:postgres-clients@@\n',
        },
        { path: 'sysusers.d/demo.conf', content: fragment },
      ],
    });
    await writeFile(join(root, 'etc/passwd'), '');
    await writeFile(join(root, 'etc/group'), 'postgres-clients:x:117:\n');
    const files = new Map([['sysusers.d/demo.conf', Buffer.from(fragment)]]);
    await expect(
      checkRequiredAccounts(manifest, files, fileAccounts(root)),
    ).resolves.toBeUndefined();
  });

  it('refuses an m line naming a group that does not exist (sysusers would invent it)', async () => {
    const fragment = 'u demo -\nm demo valkey-clients\n';
    const { manifest } = buildTestBundle({
      files: [
        { path: 'quadlet/demo.container', content: 'User=@@rick:uid:demo@@\n' },
        { path: 'sysusers.d/demo.conf', content: fragment },
      ],
    });
    const files = new Map([['sysusers.d/demo.conf', Buffer.from(fragment)]]);
    const error = await asyncRefusal(() =>
      checkRequiredAccounts(manifest, files, fileAccounts(root)),
    );
    expect(error.code).toBe('FACT_MISSING');
    expect(error.message).toBe(
      'missing host facts: group valkey-clients (the bundle uses them but does not create them)',
    );
  });
});
