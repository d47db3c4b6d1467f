/**
 * A reader that goes away before the output is written (`rick-install
 * status | head -1`): the built programs drop the rest of their output
 * without a stack trace, exit as they would have, and an install still
 * runs to its end.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestKey, type TestKey, writeSignedBundle } from '../helpers/bundle-factory.js';
import { builtCli, requireBuiltCli } from '../helpers/cli-process.js';
import {
  type HostTree,
  liveGeneration,
  makeHostTree,
  quadletPath,
  repoRoot,
} from '../helpers/host-tree.js';

let key: TestKey;
let tree: HostTree | undefined;
beforeAll(async () => {
  requireBuiltCli();
  key = await makeTestKey();
});
afterEach(async () => {
  await tree?.cleanup();
  tree = undefined;
});

/** Runs a built program with its stdout pipe closed by the reader before the program starts. */
function runWithClosedStdout(
  program: string,
  args: string[],
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [program, ...args], {
      env: { ...process.env, ...(quadletPath ? { RICK_QUADLET: quadletPath } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('a closed stdout', () => {
  it('rick-install --help and status exit 0 without a word on stderr', async () => {
    tree = await makeHostTree(key);
    expect(await runWithClosedStdout(builtCli, ['--help'])).toEqual({ code: 0, stderr: '' });
    expect(await runWithClosedStdout(builtCli, ['status', '--root', tree.root])).toEqual({
      code: 0,
      stderr: '',
    });
  });

  it('rick-bundle --help exits 0 without a word on stderr', async () => {
    const rickBundle = join(repoRoot, 'dist/cli/rick-bundle.js');
    expect(await runWithClosedStdout(rickBundle, ['--help'])).toEqual({ code: 0, stderr: '' });
  });

  it('does not stop an install: the generation goes live', async () => {
    tree = await makeHostTree(key);
    const v1 = await writeSignedBundle(tree.work, key, { version: '1.0.0' });
    expect(await runWithClosedStdout(builtCli, [v1.bundlePath, '--root', tree.root])).toEqual({
      code: 0,
      stderr: '',
    });
    expect(await liveGeneration(tree.root)).toBe('generations/1');
  });
});
