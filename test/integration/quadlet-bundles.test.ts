/**
 * Every unit rendered from every bundle in bundles/ passes podman 5.4's own
 * quadlet generator, placeholders filled with sample values. Under CI=true a
 * missing generator fails the run instead of skipping.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillSampleFacts } from '../../src/build/plan.js';
import { parseBundleArchive } from '../../src/bundle/archive.js';
import { runQuadletDryRun } from '../../src/bundle/quadlet.js';
import { quadletPath, repoRoot, requireQuadletUnderCi } from '../helpers/quadlet.js';
import { makeTempDir, runBundleCli, writeTestInstaller } from '../helpers/rick-bundle.js';

requireQuadletUnderCi();

const bundles = readdirSync(join(repoRoot, 'bundles')).filter((d) =>
  existsSync(join(repoRoot, 'bundles', d, 'bundle.yaml')),
);

describe.skipIf(!quadletPath)("every bundle's units pass podman's quadlet", () => {
  let work: string;
  beforeAll(async () => {
    work = await makeTempDir('rick-quadlet-bundles-');
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('uses quadlet from podman 5.4 or newer', () => {
    const version = execFileSync(quadletPath as string, ['-version'])
      .toString()
      .trim();
    const [major, minor] = version.split('.').map(Number);
    expect(major === 5 ? (minor ?? 0) >= 4 : (major ?? 0) > 5).toBe(true);
  });

  it('finds the authentik bundle among them', () => {
    expect(bundles).toContain('authentik');
  });

  for (const name of bundles) {
    it(`bundles/${name}: renders, and quadlet -dryrun accepts every unit`, async () => {
      const out = join(work, name);
      const built = await runBundleCli([
        'build',
        join(repoRoot, 'bundles', name),
        '--version',
        '0.0.1',
        '--out',
        out,
        '--installer',
        await writeTestInstaller(work),
      ]);
      expect(built.stderr).toBe('');
      expect(built.code).toBe(0);
      const { manifest, files } = parseBundleArchive(
        await readFile(join(out, `${name}-0.0.1.tgz`)),
      );
      // Independently of the builder: the shipped units, samples filled in.
      const dir = await mkdtemp(join(tmpdir(), 'rick-units-'));
      try {
        const units = manifest.files.filter((f) => f.kind === 'quadlet');
        expect(units.length).toBeGreaterThan(0);
        for (const unit of units) {
          const text = files.get(unit.path)?.toString('utf8') ?? '';
          await writeFile(
            join(dir, unit.path.slice('quadlet/'.length)),
            fillSampleFacts(text, name),
          );
        }
        const result = await runQuadletDryRun(dir, { quadletPath: quadletPath as string });
        expect(result.output.filter((l) => !l.startsWith('Warning'))).toEqual([]);
        expect(result.ok).toBe(true);
        for (const service of manifest.services) {
          expect(result.generated).toContain(`---${service.service}---`);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it('authentik: quadlet turns the host facts into the podman arguments the host needs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rick-units-'));
    try {
      const { files } = parseBundleArchive(
        await readFile(join(work, 'authentik/authentik-0.0.1.tgz')),
      );
      for (const [path, data] of files) {
        if (path.startsWith('quadlet/')) {
          await writeFile(join(dir, path.slice(8)), fillSampleFacts(data.toString(), 'authentik'));
        }
      }
      const { ok, generated } = await runQuadletDryRun(dir, { quadletPath: quadletPath as string });
      expect(ok).toBe(true);
      const server = generated.slice(generated.indexOf('---authentik-server.service---'));
      expect(server).toMatch(/--group-add 4242 --group-add 4242/);
      expect(server).toMatch(/--user 4242:4242/);
      expect(server).toContain(
        '--env-file /var/lib/rick/generations/1/bundles/authentik/env/authentik.env',
      );
      expect(server).toMatch(/--pod-id-file/);
      expect(server).toMatch(/-v \/var\/run\/postgresql:\/var\/run\/postgresql:Z/);
      expect(server).toMatch(/--log-driver k8s-file/);
      const pod = generated.slice(generated.indexOf('---authentik-pod.service---'));
      expect(pod).toMatch(/--publish 127\.0\.0\.1:9000:9000/);
      expect(pod).toMatch(/--shm-size 256m/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
