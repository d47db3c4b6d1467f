/**
 * One policy judgment per install: judged before the lock, confirmed under
 * it. A grant file or an account that changes between the two points makes
 * the install refuse, naming what changed, with the host as it was (but for
 * the change the test made); the same bytes written again change nothing.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { writeSignedBundle } from '../helpers/bundle-factory.js';
import { requireBuiltCli } from '../helpers/cli-process.js';
import { startHeldAtLock } from '../helpers/held-run.js';
import { DEMO_GRANT, type HostTree, liveGeneration, quadletPath } from '../helpers/host-tree.js';
import { useHostTrees } from '../helpers/host-trees.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const hosts = useHostTrees();
let tree: HostTree | undefined;
beforeAll(() => {
  requireBuiltCli();
});

const env = quadletPath ? { RICK_QUADLET: quadletPath } : {};
const GRANT = 'etc/rick/policy.d/demo.conf';

/**
 * Installs the sample bundle, held at the lock while `change` edits the
 * tree; returns the run's result and whether anything but `changed` differs
 * from the tree before the run.
 */
async function installChangedAtLock(
  changed: string,
  change: (root: string) => Promise<void>,
): Promise<{ code: number | null; stderr: string; diff: string[] }> {
  tree = await hosts.make();
  const b = await writeSignedBundle(tree.work, hosts.key, { version: '1.0.0' });
  const others = { ignore: [changed] };
  const before = await snapshotTree(tree.root, others);
  const run = await startHeldAtLock([b.bundlePath, '--root', tree.root], tree.root, tree.work, env);
  await change(tree.root);
  const done = await run.release();
  return {
    code: done.code,
    stderr: done.stderr,
    diff: diffTrees(before, await snapshotTree(tree.root, others)),
  };
}

describe('the policy is judged once per install, and confirmed under the lock', () => {
  it('refuses when the grant narrows after the judgment, naming the file, host unchanged', async () => {
    const narrowed = 'GROUPS=demo\nUSERS=demo\n';
    const r = await installChangedAtLock(GRANT, (root) =>
      writeFile(join(root, GRANT), narrowed, { mode: 0o644 }),
    );
    expect(r.stderr).toMatch(
      new RegExp(
        `^error CONFIG_INVALID: ${join(tree!.root, GRANT)} changed \\(sha256 [0-9a-f]{64} when judged, [0-9a-f]{64} now\\) after demo 1\\.0\\.0 was judged against it, before the install took the lock\\n`,
      ),
    );
    expect(r.stderr).toContain('nothing was changed; run the install again');
    expect(r.code).toBe(ExitCode.usage);
    expect(r.diff).toEqual([]);
    expect(await readFile(join(tree!.root, GRANT), 'utf8')).toBe(narrowed);
    expect(await liveGeneration(tree!.root)).toBeUndefined();
  });

  it('refuses a grant that changed only by a comment: the bytes are what was judged', async () => {
    const r = await installChangedAtLock(GRANT, (root) =>
      writeFile(join(root, GRANT), `${DEMO_GRANT}# reviewed\n`, { mode: 0o644 }),
    );
    expect(r.stderr).toContain(`error CONFIG_INVALID: ${join(tree!.root, GRANT)} changed (sha256`);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.diff).toEqual([]);
  });

  it('refuses when the grant is removed after the judgment', async () => {
    const r = await installChangedAtLock(GRANT, async (root) => {
      const { rm } = await import('node:fs/promises');
      await rm(join(root, GRANT));
    });
    expect(r.stderr).toContain(
      `error CONFIG_INVALID: ${join(tree!.root, GRANT)} was removed after demo 1.0.0 was judged against it`,
    );
    expect(r.code).toBe(ExitCode.usage);
    expect(r.diff).toEqual([]);
  });

  it('refuses when an account the judgment looked up changes in between, naming it', async () => {
    const r = await installChangedAtLock('etc/group', async (root) => {
      const group = await readFile(join(root, 'etc/group'), 'utf8');
      await writeFile(
        join(root, 'etc/group'),
        group.replace('postgres-clients:x:4001:', 'postgres-clients:x:0:'),
      );
    });
    expect(r.stderr).toContain(
      'error FACT_MISSING: the accounts demo 1.0.0 was judged on changed before the install took the lock (or in the recovery of an interrupted run under it): postgres-clients is now a group with gid 0',
    );
    expect(r.code).toBe(ExitCode.missingPrerequisite);
    expect(r.diff).toEqual([]);
  });

  it('installs when the grant is written again with the same bytes', async () => {
    const r = await installChangedAtLock(GRANT, (root) =>
      writeFile(join(root, GRANT), DEMO_GRANT, { mode: 0o644 }),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await liveGeneration(tree!.root)).toBe('generations/1');
  });
});
