/**
 * SIGTERM (systemd stopping rick-update.service, or shutdown) and SIGHUP (a
 * dropped SSH session) sent to the built rick-install while it holds a step
 * boundary (RICK_FAULT_WAIT_AT): after the flip, the run puts the last good
 * generation back before it exits with INTERRUPTED (16) and says so; before
 * the flip, it leaves nothing behind (no lock, no intent record, no
 * generation). Runs with --root, where activation is the flip alone; the
 * same interruption with services is in recovery-interrupted.test.ts.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { readState } from '../../src/host/state.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import {
  builtCli,
  builtInstaller,
  requireBuiltCli,
  runCli,
  startCli,
} from '../helpers/cli-process.js';
import { type HostTree, liveGeneration, makeHostTree, quadletPath } from '../helpers/host-tree.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

const env = quadletPath ? { RICK_QUADLET: quadletPath } : {};
let key: TestKey;
const trees: HostTree[] = [];
beforeAll(async () => {
  requireBuiltCli();
  key = await makeTestKey();
});
afterAll(async () => {
  for (const t of trees) await t.cleanup();
});

async function readIntent(root: string): Promise<Record<string, unknown> | undefined> {
  const text = await readFile(join(root, 'var/lib/rick/intent.json'), 'utf8').catch(
    () => undefined,
  );
  return text === undefined ? undefined : JSON.parse(text);
}

/** Polls (no timing asserted) until the held run has reached its step. */
async function until(what: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (await what()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the held run never reached its step');
}

/** A tree with demo 1.0.0 installed, and demo 2.0.0 signed beside it. */
async function installedTree(): Promise<{ tree: HostTree; v2: string }> {
  const tree = await makeHostTree(key);
  trees.push(tree);
  const v1 = await writeSignedBundle(tree.work, key, {
    version: '1.0.0',
    files: sampleFiles('demo', 'v1'),
  });
  const v2 = await writeSignedBundle(tree.work, key, {
    version: '2.0.0',
    files: sampleFiles('demo', 'v2'),
  });
  expect((await runCli([v1.bundlePath, '--root', tree.root], env)).code).toBe(0);
  return { tree, v2: v2.bundlePath };
}

describe('a stop signal after the flip', () => {
  const cases = [
    { signal: 'SIGTERM', program: builtCli, name: 'rick-install' },
    { signal: 'SIGHUP', program: builtCli, name: 'rick-install' },
    // What a host runs: its front part handles the signal, the rest installs.
    { signal: 'SIGTERM', program: builtInstaller, name: 'the single-file installer' },
  ] as const;
  for (const { signal, program, name } of cases) {
    it(`${signal} to ${name}: restores generation 1, says so and why, exits 16; the host is consistent`, async () => {
      const { tree, v2 } = await installedTree();
      const never = join(tree.work, 'never-created');
      const run = startCli(
        [v2, '--root', tree.root],
        { ...env, RICK_FAULT_WAIT_AT: `flipped:${never}` },
        program,
      );
      // Held at its step boundary after the flip: generation 2 is live and recorded so.
      await until(async () => (await readIntent(tree.root))?.phase === 'live');
      expect(await liveGeneration(tree.root)).toBe('generations/2');
      process.kill(run.pid, signal);
      const r = await run.done;

      expect(r.signal).toBeNull();
      expect(r.code).toBe(ExitCode.interrupted);
      expect(r.stderr).toContain(`received ${signal}: stopping at the next step`);
      expect(r.stdout).toContain(
        `stopped by ${signal} at step flipped, after generation 2 went live: restoring generation 1 before stopping`,
      );
      expect(r.stdout).toContain('generation 1 is live again');
      expect(r.stderr).toContain(
        `error INTERRUPTED: stopped by ${signal} at step flipped after generation 2 went live; generation 1 is live again`,
      );
      // Consistent: the old generation live, the new one gone, no record, no lock.
      expect(await liveGeneration(tree.root)).toBe('generations/1');
      expect(await readdir(join(tree.root, 'var/lib/rick/generations'))).toEqual(['1']);
      expect(await readIntent(tree.root)).toBeUndefined();
      expect(existsSync(join(tree.root, 'var/lib/rick/lock'))).toBe(false);
      const state = await readState(join(tree.root, 'var/lib/rick/state.json'));
      expect(state.live).toBe(1);
      expect(state.bundles.demo).toMatchObject({ installed: '1.0.0', quarantined: [] });
      expect(state.history.at(-1)).toMatchObject({ generation: 2, outcome: 'recovered' });
      const status = await runCli(['status', '--root', tree.root], env);
      expect(status.code).toBe(0);
      expect(status.stdout).not.toContain('warning');
      expect((await runCli(['verify', '--root', tree.root], env)).code).toBe(0);

      // Not quarantined: the next run installs it.
      const again = await runCli([v2, '--root', tree.root], env);
      expect(again.stderr).toBe('');
      expect(again.code).toBe(0);
      expect(await liveGeneration(tree.root)).toBe('generations/2');
    });
  }
});

describe('a stop signal before the flip', () => {
  for (const step of ['verified', 'links-created'] as const) {
    it(`SIGTERM at ${step}: nothing is left behind (no lock, no intent, no generation)`, async () => {
      const { tree, v2 } = await installedTree();
      const before = await snapshotTree(tree.root);
      const never = join(tree.work, 'never-created');
      const run = startCli([v2, '--root', tree.root], {
        ...env,
        RICK_FAULT_WAIT_AT: `${step}:${never}`,
      });
      // Holding the lock (its holder line is written once it is taken), or
      // with generation 2 written; the signal may reach the run a step
      // before the one it is held at, which is where it stops then.
      await until(async () =>
        step === 'verified'
          ? (await readFile(join(tree.root, 'var/lib/rick/lock'), 'utf8').catch(() => '')).includes(
              '"pid"',
            )
          : existsSync(join(tree.root, 'var/lib/rick/generations/2/generation.json')),
      );
      process.kill(run.pid, 'SIGTERM');
      const r = await run.done;

      expect(r.code).toBe(ExitCode.interrupted);
      expect(r.stderr).toContain('received SIGTERM: stopping at the next step');
      const at =
        step === 'verified' ? '(locked|cleaned|verified)' : '(generation-renamed|links-created)';
      expect(r.stderr).toMatch(new RegExp(`error INTERRUPTED: stopped by SIGTERM at step ${at}`));
      if (step === 'links-created') {
        expect(r.stdout).toMatch(
          new RegExp(
            `stopped by SIGTERM at step ${at}, before generation 2 went live: removing it before stopping`,
          ),
        );
        expect(r.stderr).toContain('it was removed and nothing live changed');
      } else {
        expect(r.stderr).toContain('before anything went live; nothing live changed');
      }
      expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
      expect(await liveGeneration(tree.root)).toBe('generations/1');
    });
  }
});
