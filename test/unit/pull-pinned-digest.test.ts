import { describe, expect, it } from 'vitest';
import { RickError } from '../../src/errors.js';
import { pullImageWith } from '../../src/host/system.js';
import type { CommandRunner, RunResult } from '../../src/io/exec.js';

const digest = `sha256:${'2'.repeat(64)}`;
const image = `registry.example.org/demo:1.2@${digest}`;
/**
 * podman's output for a digest its registry lacks: libimage drops the tag
 * of a tagged and digested reference, containers/image reports the
 * registry's MANIFEST_UNKNOWN, podman prefixes `Error: ` and exits 125.
 */
const podmanStderr = `Trying to pull registry.example.org/demo@${digest}...\nError: initializing source docker://registry.example.org/demo@${digest}: reading manifest ${digest} in registry.example.org/demo: manifest unknown\n`;

function podman(results: Record<string, RunResult>): { runner: CommandRunner; calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    runner: {
      run: async (command, args) => {
        calls.push([command, ...args]);
        return results[args[0] === 'image' ? 'exists' : 'pull']!;
      },
    },
  };
}

describe('pulling a pinned image at the podman edge', () => {
  it("a digest the registry lacks is IMAGE_PULL_FAILED with podman's own message", async () => {
    const { runner, calls } = podman({
      exists: { code: 1, signal: null, stdout: '', stderr: '' },
      pull: { code: 125, signal: null, stdout: '', stderr: podmanStderr },
    });
    const pull = pullImageWith(runner);
    const error = await pull({ image, policy: 'missing', options: [], source: 'Image=' }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RickError);
    expect((error as RickError).code).toBe('IMAGE_PULL_FAILED');
    expect((error as RickError).exitCode).toBe(12);
    expect((error as RickError).message).toBe(
      `cannot pull image ${image}: initializing source docker://registry.example.org/demo@${digest}: reading manifest ${digest} in registry.example.org/demo: manifest unknown`,
    );
    // podman is handed the reference as the unit names it, tag and digest.
    expect(calls).toEqual([
      ['podman', 'image', 'exists', image],
      ['podman', 'pull', image],
    ]);
  });
});
