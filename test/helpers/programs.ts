/**
 * The host programs a test needs (caddy, systemd-analyze, …): a test file
 * skips without them on a developer's machine, and fails under CI=true,
 * where scripts/setup.sh installs them.
 */
import { execFileSync } from 'node:child_process';

/** Whether every program is on PATH; under CI=true a missing one throws, naming them. */
export function havePrograms(...programs: string[]): boolean {
  const missing = programs.filter((program) => {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', program], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length && process.env.CI === 'true') {
    throw new Error(
      `${missing.join(', ')} required under CI=true (scripts/setup.sh installs them)`,
    );
  }
  return missing.length === 0;
}
