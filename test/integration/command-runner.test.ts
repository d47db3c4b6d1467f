/**
 * The real process edge (src/io/exec.ts) with real programs: output and exit
 * codes, a program that cannot be started, and the timeout.
 */
import { describe, expect, it } from 'vitest';
import { realCommandRunner } from '../../src/io/exec.js';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('realCommandRunner', () => {
  it('returns exit code, stdout and stderr, and feeds stdin', async () => {
    const r = await realCommandRunner.run('sh', ['-c', 'cat; echo err >&2; exit 3'], {
      input: 'in',
      timeoutMs: 60_000,
    });
    expect(r).toEqual({ code: 3, signal: null, stdout: 'in', stderr: 'err\n' });
  });

  it('reports a program that cannot be started as 127 with the reason, and leaves no timer behind', async () => {
    const before = timers();
    const r = await realCommandRunner.run('/nonexistent/rick-no-such-program', [], {
      timeoutMs: 60_000,
    });
    expect(r).toEqual({
      code: 127,
      signal: null,
      stdout: '',
      stderr: '/nonexistent/rick-no-such-program: spawn /nonexistent/rick-no-such-program ENOENT',
      startError: 'ENOENT',
    });
    // A timer left running would hold the process open until the timeout.
    expect(timers()).toBe(before);
  });

  it('kills a program that outlives its timeout', async () => {
    const r = await realCommandRunner.run('sleep', ['30'], { timeoutMs: 100 });
    expect(r.code).toBeNull();
    expect(r.signal).toBe('SIGTERM');
    expect(r.startError).toBeUndefined();
  });

  it('hands stderr to onStderr as it comes, and still returns all of it', async () => {
    const seen: string[] = [];
    const r = await realCommandRunner.run('sh', ['-c', 'echo one >&2; echo out; echo two >&2'], {
      onStderr: (chunk) => seen.push(chunk.toString()),
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('one\ntwo\n');
    expect(seen.join('')).toBe('one\ntwo\n');
  });
});
