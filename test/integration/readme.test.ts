/**
 * The README's quick start, run as written: the block between its
 * quick-start markers goes to `sh -eu` from the checkout, with rick-bundle
 * and rick-install on the PATH as scripts/setup.sh links them (to
 * dist/cli/), and TMPDIR in a fresh directory so that `mktemp -d` and all
 * it writes stay there. A README that drifts from the programs fails here.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { requireBuiltCli } from '../helpers/cli-process.js';
import { repoRoot } from '../helpers/host-tree.js';

let work: string | undefined;

afterEach(async () => {
  if (work) await rm(work, { recursive: true, force: true });
  work = undefined;
});

/** The shell block between `<!-- quick-start … -->` and `<!-- /quick-start -->`. */
function quickStart(readme: string): string {
  const block = readme.match(
    /<!-- quick-start[^>]*-->\n```sh\n([\s\S]*?)\n```\n<!-- \/quick-start -->/,
  );
  if (!block) throw new Error('README.md lost its quick-start markers');
  return block[1]!;
}

describe('README quick start', () => {
  it('runs as written: keygen, build, sign, verify, install into an offline tree, status, verify', async () => {
    requireBuiltCli();
    const script = quickStart(await readFile(join(repoRoot, 'README.md'), 'utf8'));
    // What the quick start promises: no root, an offline tree.
    expect(script).toContain('--root "$h"');
    expect(script).not.toMatch(/\bsudo\b|systemctl/);

    work = await mkdtemp(join(tmpdir(), 'rick-readme-'));
    const bin = join(work, 'bin');
    const tmp = join(work, 'tmp');
    await mkdir(bin);
    await mkdir(tmp);
    for (const prog of ['rick-bundle', 'rick-install']) {
      const shim = join(bin, prog);
      await writeFile(
        shim,
        `#!/bin/sh\nexec "${process.execPath}" "${join(repoRoot, `dist/cli/${prog}.js`)}" "$@"\n`,
      );
      await chmod(shim, 0o755);
    }
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      TMPDIR: tmp,
    };
    delete env.RICK_QUADLET;
    const run = spawnSync('sh', ['-eu', '-c', script], {
      cwd: repoRoot,
      env,
      encoding: 'utf8',
    });
    expect(run.stderr).not.toMatch(/^error /m);
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('installed authentik 1.0.0 as generation 1');
    expect(run.stdout).toContain('live generation: 1');
    expect(run.stdout).toMatch(/generation 1: \d+ files checked, no drift/);

    // Everything it wrote is under the one directory mktemp made.
    const made = await readdir(tmp);
    expect(made).toHaveLength(1);
    const d = join(tmp, made[0]!);
    expect((await readdir(d)).sort()).toEqual([
      'authentik-1.0.0.tgz',
      'authentik-1.0.0.tgz.sig',
      'host',
      'keys',
    ]);
    // The grant the README says --grant --yes records.
    const grant = await readFile(join(d, 'host/etc/rick/policy.d/authentik.conf'), 'utf8');
    expect(grant).toContain('GROUPS=postgres-clients valkey-clients\n');
    const unit = await readFile(
      join(d, 'host/var/lib/rick/current/quadlet/authentik/authentik-server.container'),
      'utf8',
    );
    expect(unit).toContain('[Container]');
  }, 180_000);
});
