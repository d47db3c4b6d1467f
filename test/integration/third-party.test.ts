/**
 * scripts/third-party.mjs: the release's notices and SBOM come from what the
 * single-file installer really holds (esbuild's metafile, written by
 * installer/build.mjs) and from package-lock.json.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/host-tree.js';

const run = promisify(execFile);
const script = join(repoRoot, 'scripts/third-party.mjs');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rick-third-party-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The packages whose files are in the built installer, read from the metafile's paths. */
async function inlinedPackages(): Promise<string[]> {
  const meta = JSON.parse(
    await readFile(join(repoRoot, 'dist/installer/rick-install.meta.json'), 'utf8'),
  ) as { inputs: Record<string, unknown> };
  const names = new Set<string>();
  for (const path of Object.keys(meta.inputs)) {
    const m = path.match(/(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/);
    if (m?.[1]) names.add(m[1]);
  }
  return [...names].sort();
}

describe('third-party notices and SBOM of the single-file installer', () => {
  it('names every package inlined in the installer, with its license text and lockfile version', async () => {
    const out = join(dir, 'ok');
    await run('mkdir', [out]);
    const r = await run('node', [script, '--out', out, '--version', '9.8.7'], { cwd: repoRoot });
    const packages = await inlinedPackages();
    // The packages the installer is known to inline: the metafile is read, not guessed.
    expect(packages).toEqual(expect.arrayContaining(['commander', 'semver', 'undici', 'zod']));
    expect(r.stdout).toContain(`third-party: ${packages.length} packages:`);

    const notices = await readFile(join(out, 'THIRD-PARTY-NOTICES.txt'), 'utf8');
    const sbom = JSON.parse(await readFile(join(out, 'rick-install.cdx.json'), 'utf8')) as {
      bomFormat: string;
      specVersion: string;
      metadata: { component: { name: string; version: string } };
      components: Array<{
        name: string;
        version: string;
        purl: string;
        licenses: Array<{ license?: { id: string }; expression?: string }>;
        hashes: Array<{ alg: string; content: string }>;
      }>;
    };
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.specVersion).toBe('1.5');
    expect(sbom.metadata.component).toMatchObject({ name: 'rick-install', version: '9.8.7' });
    expect(sbom.components.map((c) => c.name).sort()).toEqual(packages);

    const lock = JSON.parse(await readFile(join(repoRoot, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version: string; license: string; integrity: string }>;
    };
    for (const name of packages) {
      const locked = lock.packages[`node_modules/${name}`];
      expect(locked, name).toBeDefined();
      const files = (await readdir(join(repoRoot, 'node_modules', name))).filter((f) =>
        /^licen[cs]e/i.test(f),
      );
      expect(files.length, `${name} ships a license file`).toBeGreaterThan(0);
      for (const f of files) {
        const text = (await readFile(join(repoRoot, 'node_modules', name, f), 'utf8')).trimEnd();
        expect(notices, `${name}'s ${f}`).toContain(text);
      }
      expect(notices).toContain(`  ${name} ${locked?.version} (${locked?.license})\n`);
      const component = sbom.components.find((c) => c.name === name);
      expect(component?.version).toBe(locked?.version);
      expect(component?.purl).toBe(`pkg:npm/${name}@${locked?.version}`);
      const license = component?.licenses[0];
      expect(license?.license?.id ?? license?.expression).toBe(locked?.license);
      // The lockfile's sha512 integrity, as hex.
      expect(component?.hashes).toEqual([
        {
          alg: 'SHA-512',
          content: Buffer.from(locked?.integrity.slice(7) ?? '', 'base64').toString('hex'),
        },
      ]);
    }

    // The same inputs give the same bytes: a rebuild from the tag compares equal.
    const again = join(dir, 'again');
    await run('mkdir', [again]);
    await run('node', [script, '--out', again, '--version', '9.8.7'], { cwd: repoRoot });
    for (const f of ['THIRD-PARTY-NOTICES.txt', 'rick-install.cdx.json']) {
      expect((await readFile(join(again, f))).equals(await readFile(join(out, f)))).toBe(true);
    }
  });

  it('refuses a package of the installer that the lockfile does not know, writing nothing', async () => {
    const out = join(dir, 'unknown');
    await run('mkdir', [out]);
    const metafile = join(dir, 'meta.json');
    await writeFile(
      metafile,
      JSON.stringify({
        inputs: { 'node_modules/not-in-the-lock/index.js': { bytes: 1 }, 'src/x.ts': { bytes: 1 } },
      }),
    );
    const error = await run('node', [script, '--out', out, '--metafile', metafile], {
      cwd: repoRoot,
    }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error?.stderr).toContain(
      'third-party: node_modules/not-in-the-lock is in the installer but not in package-lock.json',
    );
    expect(error?.code).toBe(1);
    expect(await readdir(out)).toEqual([]);
  });

  it('refuses a metafile that names no package, writing nothing', async () => {
    const out = join(dir, 'none');
    await run('mkdir', [out]);
    const metafile = join(dir, 'empty.json');
    await writeFile(metafile, JSON.stringify({ inputs: { 'src/x.ts': { bytes: 1 } } }));
    const error = await run('node', [script, '--out', out, '--metafile', metafile], {
      cwd: repoRoot,
    }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error?.stderr).toContain(`third-party: ${metafile} names no package`);
    expect(error?.code).toBe(1);
    expect(await readdir(out)).toEqual([]);
  });
});
