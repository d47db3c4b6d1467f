import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findQuadlet, quadletCandidates, runQuadletDryRun } from '../../src/bundle/quadlet.js';
import { quadletPath, repoRoot, requireQuadletUnderCi } from '../helpers/quadlet.js';
import { makeTempDir } from '../helpers/rick-bundle.js';

requireQuadletUnderCi();

let work: string;
beforeEach(async () => {
  work = await makeTempDir('rick-quadlet-');
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('finding quadlet', () => {
  it('looks at $RICK_QUADLET, then the repo cache, then the system paths', async () => {
    expect(quadletCandidates(repoRoot)).toEqual([
      join(repoRoot, '.cache/podman/root/usr/libexec/podman/quadlet'),
      '/usr/libexec/podman/quadlet',
      '/usr/lib/podman/quadlet',
    ]);
    const fake = join(work, 'quadlet');
    await writeFile(fake, '#!/bin/sh\nexit 0\n');
    await chmod(fake, 0o755);
    expect(findQuadlet({ env: { RICK_QUADLET: fake }, repoRoot })).toBe(fake);
    // A named generator that is not there is not silently replaced by another.
    expect(findQuadlet({ env: { RICK_QUADLET: join(work, 'none') }, repoRoot })).toBeUndefined();
  });

  it('refuses with a hint when no generator exists', async () => {
    await expect(
      runQuadletDryRun(work, { env: { RICK_QUADLET: join(work, 'none') } }),
    ).rejects.toMatchObject({
      code: 'PREREQUISITE_MISSING',
      message: expect.stringMatching(/quadlet generator not found/),
      hint: expect.stringMatching(/fetch-quadlet\.sh/),
    });
  });
});

describe.skipIf(!quadletPath)('quadlet -dryrun on a unit directory', () => {
  it('accepts good units and returns what they generate', async () => {
    const dir = join(work, 'units');
    await mkdir(dir);
    await writeFile(join(dir, 'web.container'), '[Container]\nImage=docker.io/library/nginx:1\n');
    const result = await runQuadletDryRun(dir, { quadletPath: quadletPath as string });
    expect(result.ok).toBe(true);
    expect(result.generated).toContain('---web.service---');
    expect(result.output).toEqual([]);
  });

  it('rejects a bad unit with the generator lines naming it', async () => {
    const dir = join(work, 'units');
    await mkdir(dir);
    await writeFile(join(dir, 'good.container'), '[Container]\nImage=docker.io/library/nginx:1\n');
    await writeFile(join(dir, 'bad.container'), '[Container]\nExec=sleep 1\n');
    const result = await runQuadletDryRun(dir, { quadletPath: quadletPath as string });
    expect(result.ok).toBe(false);
    expect(result.output.join('\n')).toMatch(/converting "bad\.container": .*Image/);
    expect(result.output.join('\n')).not.toContain('good.container');
  });
});
