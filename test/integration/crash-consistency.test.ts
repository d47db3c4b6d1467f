/**
 * Kills the built installer with SIGKILL at every step boundary of an install
 * (RICK_FAULT_KILL_AT) and checks that the live tree is exactly the old or
 * exactly the new generation, never a mix, and that the next run recovers and
 * succeeds. Runs the first install and an upgrade, with --root (no systemctl:
 * the three service steps are not reached there and the run completes).
 *
 * From the intent record on, a killed run leaves intent.json naming the
 * generation it was replacing and the one it was making live, and the next
 * run acts on that record: it removes a generation written but never live
 * (a crash between the intent and the flip) and restores the previous one
 * after the flip.
 */
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installSteps } from '../../src/host/fault.js';
import { readState } from '../../src/host/state.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { requireBuiltCli, runCli } from '../helpers/cli-process.js';
import { type HostTree, makeHostTree, quadletPath } from '../helpers/host-tree.js';
import { snapshotTree } from '../helpers/tree-snapshot.js';

const onlineOnly = new Set(['daemon-reloaded', 'restarted', 'health-checked']);
const steps: readonly string[] = installSteps;
const between = (first: string, last: string) =>
  new Set(steps.slice(steps.indexOf(first), steps.indexOf(last) + 1));
/** Killed here, the run leaves its intent record. */
const recorded = between('intent-written', 'state-written');
/** Killed here, the new generation is complete but was never live. */
const writtenNotLive = between('generation-renamed', 'flip-link-created');
/** Killed here, `current` was flipped but the outcome not recorded. */
const flippedUnconfirmed = new Set(['flipped', 'state-write']);

async function readIntentFile(root: string): Promise<Record<string, unknown> | undefined> {
  const text = await readFile(join(root, 'var/lib/rick/intent.json'), 'utf8').catch(
    () => undefined,
  );
  return text === undefined ? undefined : JSON.parse(text);
}
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

/** Everything a service manager would see: where `current` points and what it holds. */
async function liveView(root: string): Promise<unknown> {
  const state = join(root, 'var/lib/rick');
  const current = await readlink(join(state, 'current')).catch(() => null);
  if (current === null) return { current };
  const dir = join(state, current);
  const record = JSON.parse(await readFile(join(dir, 'generation.json'), 'utf8'));
  delete record.createdAt;
  return {
    current,
    quadletLink: await readlink(join(root, 'etc/containers/systemd/rick')).catch(() => null),
    record,
    files: await snapshotTree(dir, { ignore: ['generation.json'] }),
  };
}

async function newTree(): Promise<HostTree> {
  const tree = await makeHostTree(key);
  trees.push(tree);
  return tree;
}

async function install(tree: HostTree, bundlePath: string, extra: NodeJS.ProcessEnv = {}) {
  return runCli([bundlePath, '--root', tree.root], { ...env, ...extra });
}

async function expectClean(root: string): Promise<void> {
  const gens = await readdir(join(root, 'var/lib/rick/generations'));
  expect(gens.filter((g) => !/^[0-9]+$/.test(g))).toEqual([]);
  const stateDir = await readdir(join(root, 'var/lib/rick'));
  expect(stateDir.filter((n) => n.includes('.tmp-') || n.startsWith('.apply-'))).toEqual([]);
}

describe('crash consistency (SIGKILL at every step boundary)', () => {
  let v1Ref: unknown;
  let v2Ref: unknown;
  let work: string;

  beforeAll(async () => {
    const ref = await newTree();
    work = ref.work;
    const v1 = await writeSignedBundle(work, key, {
      version: '1.0.0',
      files: sampleFiles('demo', 'v1'),
    });
    const v2 = await writeSignedBundle(work, key, {
      version: '2.0.0',
      files: sampleFiles('demo', 'v2'),
    });
    expect((await install(ref, v1.bundlePath)).code).toBe(0);
    v1Ref = await liveView(ref.root);
    expect((await install(ref, v2.bundlePath)).code).toBe(0);
    v2Ref = await liveView(ref.root);
    expect(v1Ref).not.toEqual(v2Ref);
  });

  for (const step of installSteps) {
    it(`killed at ${step}: old or new is live, never a mix, and the next run recovers`, async () => {
      const tree = await newTree();
      const v1 = join(work, 'demo-1.0.0.tgz');
      const v2 = join(work, 'demo-2.0.0.tgz');
      const sig = (p: string) => ['--signature', `${p}.sig`];

      // First install, killed: nothing live or v1 live.
      const first = await runCli([v1, ...sig(v1), '--root', tree.root], {
        ...env,
        RICK_FAULT_KILL_AT: step,
      });
      if (onlineOnly.has(step)) expect(first.code).toBe(0);
      else expect(first.signal).toBe('SIGKILL');
      expect([{ current: null }, v1Ref]).toContainEqual(await liveView(tree.root));
      const intent1 = await readIntentFile(tree.root);
      if (recorded.has(step) && !onlineOnly.has(step)) {
        expect(intent1).toMatchObject({ operation: 'install', to: 1, created: true });
        expect(intent1).not.toHaveProperty('from');
      } else expect(intent1).toBeUndefined();
      const recovered1 = await install(tree, v1);
      expect(recovered1.stderr).toBe('');
      expect(recovered1.code).toBe(0);
      if (writtenNotLive.has(step)) {
        expect(recovered1.stdout).toContain(
          'removed generation 1, written by an interrupted run (install demo 1.0.0) and never confirmed',
        );
      }
      if (flippedUnconfirmed.has(step)) {
        expect(recovered1.stdout).toContain(
          'generation 1 went live in a run that did not finish (install demo 1.0.0): restoring none',
        );
      }
      expect(await readIntentFile(tree.root)).toBeUndefined();
      expect(await liveView(tree.root)).toEqual(v1Ref);
      await expectClean(tree.root);

      // Upgrade, killed: v1 or v2 live.
      const upgrade = await install(tree, v2, { RICK_FAULT_KILL_AT: step });
      if (onlineOnly.has(step)) expect(upgrade.code).toBe(0);
      else expect(upgrade.signal).toBe('SIGKILL');
      expect([v1Ref, v2Ref]).toContainEqual(await liveView(tree.root));
      const intent2 = await readIntentFile(tree.root);
      if (recorded.has(step) && !onlineOnly.has(step)) {
        expect(intent2).toMatchObject({ operation: 'install', from: 1, to: 2, created: true });
        // Durable: written through a temporary file and renamed, never half there.
        expect((await stat(join(tree.root, 'var/lib/rick/intent.json'))).isFile()).toBe(true);
      } else expect(intent2).toBeUndefined();
      const recovered2 = await install(tree, v2);
      expect(recovered2.stderr).toBe('');
      expect(recovered2.code).toBe(0);
      if (writtenNotLive.has(step)) {
        expect(recovered2.stdout).toContain(
          'removed generation 2, written by an interrupted run (install demo 2.0.0) and never confirmed',
        );
      }
      if (flippedUnconfirmed.has(step)) {
        expect(recovered2.stdout).toContain(
          'generation 2 went live in a run that did not finish (install demo 2.0.0): restoring 1',
        );
      }
      expect(await readIntentFile(tree.root)).toBeUndefined();
      expect(await liveView(tree.root)).toEqual(v2Ref);
      await expectClean(tree.root);
      const state = await readState(join(tree.root, 'var/lib/rick/state.json'));
      expect(state.bundles.demo).toMatchObject({
        installed: '2.0.0',
        highest: '2.0.0',
        quarantined: [],
      });
      expect((await runCli(['verify', '--root', tree.root], env)).code).toBe(0);
    });
  }
});
