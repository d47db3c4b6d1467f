/**
 * A host tree for installer tests (`--root DIR`): etc/passwd and etc/group
 * with the infrastructure groups the sample bundle needs (it creates its
 * service user itself), the trusted key in etc/rick/keys, the secrets file
 * (root, 0600), and a place for bundles.
 */
import { chmod, mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findQuadlet, runQuadletDryRun } from '../../src/bundle/quadlet.js';
import { createProgram } from '../../src/cli/rick-install.js';
import { RickError } from '../../src/errors.js';
import type { UnitCheck } from '../../src/host/activation/graph.js';
import type { InstallerDeps } from '../../src/host/install.js';
import type { TestKey } from './bundle-factory.js';
import type { FakeHost } from './fake-host.js';

export interface HostTree {
  root: string;
  /** Where tests put bundles (outside the host tree). */
  work: string;
  cleanup(): Promise<void>;
}

export const SECRET = 'p@ss/word&x=1';

/**
 * What the test hosts grant the sample bundle (test/helpers/bundle-factory.ts):
 * its client group, and its user and group for trees where those exist
 * before the bundle creates them.
 */
export const DEMO_GRANT = 'GROUPS=demo postgres-clients\nUSERS=demo\n';

export async function makeHostTree(
  key: TestKey,
  options: {
    secrets?: string;
    groups?: string[];
    users?: string[];
    grants?: Record<string, string>;
  } = {},
): Promise<HostTree> {
  const base = await mkdtemp(join(tmpdir(), 'rick-host-'));
  const root = join(base, 'root');
  const work = join(base, 'work');
  await mkdir(join(root, 'etc/rick/keys'), { recursive: true });
  await mkdir(join(root, 'etc/rick/secrets'), { recursive: true, mode: 0o700 });
  await mkdir(work, { recursive: true });
  await writeFile(
    join(root, 'etc/group'),
    `${(options.groups ?? ['root:x:0:', 'postgres-clients:x:4001:', 'valkey-clients:x:4002:']).join('\n')}\n`,
  );
  await writeFile(
    join(root, 'etc/passwd'),
    `${(options.users ?? ['root:x:0:0:root:/root:/bin/sh']).join('\n')}\n`,
  );
  await writeFile(join(root, 'etc/rick/keys/release.asc'), key.publicKeyArmored, { mode: 0o644 });
  const secretsFile = join(root, 'etc/rick/secrets/demo.env');
  await writeFile(secretsFile, options.secrets ?? `db_password=${SECRET}\n`, { mode: 0o600 });
  await chmod(secretsFile, 0o600);
  await mkdir(join(root, 'etc/rick/policy.d'), { recursive: true });
  for (const [bundle, text] of Object.entries(options.grants ?? { demo: DEMO_GRANT })) {
    await writeFile(join(root, `etc/rick/policy.d/${bundle}.conf`), text, { mode: 0o644 });
  }
  return { root, work, cleanup: () => rm(base, { recursive: true, force: true }) };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Podman's real quadlet from .cache (scripts/fetch-quadlet.sh), or undefined when not fetched. */
export const quadletPath = findQuadlet({ repoRoot });

/** The installer's unit check with the real generator; skipped (with a note) when absent. */
export async function realQuadletCheck(unitDir: string): Promise<UnitCheck> {
  if (!quadletPath) return { skipped: 'quadlet not available' };
  const result = await runQuadletDryRun(unitDir, { quadletPath });
  if (!result.ok) {
    throw new RickError(
      'QUADLET_REJECTED',
      `quadlet rejects the units: ${result.output.join(' | ')}`,
    );
  }
  return { generated: result.generated };
}

/** Runs rick-install in-process against a fake host (the process edge only). */
export async function runInstaller(
  host: FakeHost,
  argv: string[],
  extra: Partial<InstallerDeps> = {},
): Promise<RunResult> {
  const { runProgram } = await import('../../src/cli/run.js');
  let stdout = '';
  let stderr = '';
  const output = {
    stdout: (t: string) => {
      stdout += t;
    },
    stderr: (t: string) => {
      stderr += t;
    },
  };
  const program = createProgram({
    output,
    host: () => host,
    validateUnits: extra.validateUnits ?? realQuadletCheck,
    ...extra,
  });
  const code = await runProgram(program, argv, output);
  return { code, stdout, stderr };
}

export async function liveGeneration(root: string): Promise<string | undefined> {
  return readlink(join(root, 'var/lib/rick/current')).catch(() => undefined);
}

/** Reads a file of the live generation (path relative to the generation directory). */
export async function readLive(root: string, rel: string): Promise<string> {
  const target = await liveGeneration(root);
  if (!target) throw new Error('nothing is live');
  return readFile(join(root, 'var/lib/rick', target, rel), 'utf8');
}
