/**
 * The set-up of the tests that run `rick-build build` in-process: a fresh
 * temporary directory per test with an output directory and an installer
 * stand-in, removed after the test, and the build command on them.
 *
 * Usage, at the top level of a test file:
 *   const ws = useBuildWorkspace('rick-build-needs-');
 *   … const result = await ws.build(dir); expect(await ws.outputFiles()).toEqual([]);
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { type CliResult, makeTempDir, runBundleCli, writeTestInstaller } from './rick-bundle.js';

export interface BuildWorkspace {
  /** The test's temporary directory. */
  readonly work: string;
  /** `--out` of every build: `<work>/out`, created by the first build that writes. */
  readonly out: string;
  /** The installer stand-in the builds pack. */
  readonly installer: string;
  /** `rick-bundle build DIR --version VERSION --out OUT --installer INSTALLER ...extra`. */
  build(dir: string, extra?: readonly string[], version?: string): Promise<CliResult>;
  /** The files the builds wrote to `out` (none when it does not exist). */
  outputFiles(): Promise<string[]>;
  /** Asserts that no build created `out` at all. */
  expectNoOutput(): Promise<void>;
}

export function useBuildWorkspace(prefix: string): BuildWorkspace {
  let work = '';
  let out = '';
  let installer = '';
  beforeEach(async () => {
    work = await makeTempDir(prefix);
    out = join(work, 'out');
    installer = await writeTestInstaller(work);
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });
  return {
    get work() {
      return work;
    },
    get out() {
      return out;
    },
    get installer() {
      return installer;
    },
    build: (dir, extra = [], version = '1.0.0') =>
      runBundleCli([
        'build',
        dir,
        '--version',
        version,
        '--out',
        out,
        '--installer',
        installer,
        ...extra,
      ]),
    outputFiles: () => readdir(out).catch(() => [] as string[]),
    expectNoOutput: async () => {
      await expect(readdir(out)).rejects.toMatchObject({ code: 'ENOENT' });
    },
  };
}
