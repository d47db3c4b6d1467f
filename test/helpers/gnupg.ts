/**
 * GnuPG for the tests that check rick against it: whether gpg and gpgv are
 * here (CI must have them; elsewhere those tests are skipped), and gpg in a
 * private home directory, so that no key of the machine's user takes part.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';

export const hasGnupg =
  spawnSync('gpg', ['--version']).status === 0 && spawnSync('gpgv', ['--version']).status === 0;
if (!hasGnupg && process.env.CI === 'true') throw new Error('gpg and gpgv are required under CI');

export interface GnupgHome {
  home: string;
  /** Runs gpg in this home, without a terminal; returns its stdout. */
  gpg(args: string[], input?: string): Buffer;
  /** Stops the agent gpg started for this home. */
  close(): void;
}

export async function makeGnupgHome(home: string): Promise<GnupgHome> {
  await mkdir(home, { recursive: true });
  await chmod(home, 0o700);
  return {
    home,
    gpg: (args, input) =>
      execFileSync('gpg', ['--homedir', home, '--batch', '--yes', '--no-tty', ...args], {
        input,
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    close: () => {
      spawnSync('gpgconf', ['--homedir', home, '--kill', 'all']);
    },
  };
}
