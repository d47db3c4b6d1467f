import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode, isRickError } from '../../src/errors.js';
import { acquireLock, readLockHolder } from '../../src/host/lock.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { requireBuiltCli, runCli, startCli } from '../helpers/cli-process.js';
import { waitFor } from '../helpers/held-run.js';
import { type HostTree, liveGeneration, makeHostTree, quadletPath } from '../helpers/host-tree.js';

let key: TestKey;
let tree: HostTree;
beforeAll(async () => {
  requireBuiltCli();
  key = await makeTestKey();
});
afterEach(async () => {
  await tree?.cleanup();
});

const env = quadletPath ? { RICK_QUADLET: quadletPath } : {};

describe('one install at a time', () => {
  it('a second install started while one runs exits LOCK_BUSY naming the holder', async () => {
    tree = await makeHostTree(key);
    const v1 = await writeSignedBundle(tree.work, key, { version: '1.0.0' });
    const go = join(tree.work, 'go');
    const first = startCli([v1.bundlePath, '--root', tree.root], {
      ...env,
      RICK_FAULT_WAIT_AT: `locked:${go}`,
    });
    const lockFile = join(tree.root, 'var/lib/rick/lock');
    const holder = await waitFor(() => readLockHolder(lockFile));
    expect(holder.pid).toBe(first.pid);

    const second = await runCli([v1.bundlePath, '--root', tree.root], env);
    expect(second.code).toBe(ExitCode.lockBusy);
    expect(second.stderr).toContain(
      `error LOCK_BUSY: another rick-install holds the lock ${lockFile} (pid ${first.pid}, since ${holder.since}, install demo-1.0.0.tgz)`,
    );

    await writeFile(go, '');
    const done = await first.done;
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    expect(await liveGeneration(tree.root)).toBe('generations/1');
  });

  it('a lock held by a SIGKILLed install does not block the next one', async () => {
    tree = await makeHostTree(key);
    const v1 = await writeSignedBundle(tree.work, key, { version: '1.0.0' });
    const killed = await runCli([v1.bundlePath, '--root', tree.root], {
      ...env,
      RICK_FAULT_KILL_AT: 'locked',
    });
    expect(killed.signal).toBe('SIGKILL');
    const holder = await readLockHolder(join(tree.root, 'var/lib/rick/lock'));
    expect(holder?.pid).toBeGreaterThan(0);
    const next = await runCli([v1.bundlePath, '--root', tree.root], env);
    expect(next.stderr).toBe('');
    expect(next.code).toBe(0);
    expect(await liveGeneration(tree.root)).toBe('generations/1');
    const v2 = await writeSignedBundle(tree.work, key, {
      version: '1.1.0',
      files: sampleFiles('demo', 'v2'),
    });
    expect((await runCli([v2.bundlePath, '--root', tree.root], env)).code).toBe(0);
  });

  it('names the holder in-process too, and is free again once released', async () => {
    tree = await makeHostTree(key);
    const file = join(tree.root, 'var/lib/rick/lock');
    const held = await acquireLock(file, { purpose: 'test holder' });
    const error = await acquireLock(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isRickError(error) && error.code).toBe('LOCK_BUSY');
    expect((error as Error).message).toContain(`(pid ${process.pid}, since `);
    expect((error as Error).message).toContain('test holder');
    await held.release();
    const again = await acquireLock(file);
    await again.release();
  });
});
