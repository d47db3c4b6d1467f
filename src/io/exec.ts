/**
 * The process edge for external commands (getent, systemctl, podman,
 * systemd-sysusers, …). Everything that runs a program goes through a
 * CommandRunner so that tests replace it with a fake at this one boundary.
 */
import { childProcess } from './lazy-builtins.js';

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Kills the command after this many milliseconds. */
  timeoutMs?: number;
  /** Receives the command's stderr as it comes (it is still collected in the result). */
  onStderr?: (chunk: Buffer) => void;
}

export interface RunResult {
  /** Exit code, or null when the command was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Why the program could not be started at all (an errno code such as ENOENT); code is then 127. */
  startError?: string;
}

export interface CommandRunner {
  run(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
}

/** Runs real programs. A program that cannot be started resolves with code 127, like a shell. */
export const realCommandRunner: CommandRunner = {
  run(command, args, options = {}) {
    return new Promise((resolve) => {
      const child = childProcess().spawn(command, [...args], {
        env: options.env ?? process.env,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      // Not spawn's own `timeout`: its timer is cleared only on 'exit', which
      // a program that never started does not emit, so it kept the process
      // alive for the whole timeout after the failure had been reported.
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => child.kill('SIGTERM'), options.timeoutMs);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => {
        err.push(d);
        options.onStderr?.(d);
      });
      child.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve({
          code: 127,
          signal: null,
          stdout: '',
          stderr: `${command}: ${error.message}`,
          ...(child.pid === undefined ? { startError: error.code ?? 'unknown' } : {}),
        });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({
          code,
          signal,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
        });
      });
      child.stdin.on('error', () => {});
      child.stdin.end(options.input ?? '');
    });
  },
};
