/**
 * scripts/release.sh, which the release workflow runs as `npm run
 * release:build`: every bundle built with the tag's version and signed, a
 * SHA256SUMS over everything and its signature, all checked with GnuPG.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBundleArchive } from '../../src/bundle/archive.js';
import { generateSigningKey } from '../../src/bundle/openpgp.js';
import { repoRoot } from '../helpers/host-tree.js';

const run = promisify(execFile);
const PASSPHRASE = 'correct horse battery staple';

let dir: string;
let keyFile: string;
let keyring: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rick-release-'));
  const key = await generateSigningKey({ name: 'rick release test', passphrase: PASSPHRASE });
  keyFile = join(dir, 'signing-key.asc');
  await writeFile(keyFile, key.privateKeyArmored, { mode: 0o600 });
  await writeFile(join(dir, 'release.asc'), key.publicKeyArmored);
  keyring = join(dir, 'release.gpg');
  await run('gpg', [
    '--batch',
    '--quiet',
    '--dearmor',
    '--output',
    keyring,
    join(dir, 'release.asc'),
  ]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function release(out: string) {
  return run(
    'sh',
    [
      join(repoRoot, 'scripts/release.sh'),
      '--version',
      'v9.8.7',
      '--key',
      keyFile,
      '--out',
      out,
      '--no-build',
    ],
    {
      cwd: repoRoot,
      env: { ...process.env, RICK_SIGNING_PASSPHRASE: PASSPHRASE },
      maxBuffer: 16 * 1024 * 1024,
    },
  );
}

describe('release build', () => {
  it('builds and signs every bundle with the tag version, and a signed SHA256SUMS', async () => {
    const out = join(dir, 'out');
    const r = await release(out);
    expect(r.stdout).toContain('release: 9.8.7 ready in');
    const bundles = (await readdir(join(repoRoot, 'bundles'))).sort();
    expect(bundles.length).toBeGreaterThan(0);
    const expected = [
      'SHA256SUMS',
      'SHA256SUMS.sig',
      'bootstrap.sh',
      ...bundles.flatMap((b) => [`${b}-9.8.7.tgz`, `${b}-9.8.7.tgz.sig`]),
    ].sort();
    expect((await readdir(out)).sort()).toEqual(expected);
    // The key and its passphrase never reach the log.
    expect(`${r.stdout}${r.stderr}`).not.toContain(PASSPHRASE);
    expect(`${r.stdout}${r.stderr}`).not.toContain('PRIVATE KEY');

    const sums = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out });
    expect(sums.stdout.split('\n').filter(Boolean)).toHaveLength(expected.length - 2);
    await run('gpgv', ['--keyring', keyring, join(out, 'SHA256SUMS.sig'), join(out, 'SHA256SUMS')]);
    const installer = await readFile(join(repoRoot, 'dist/installer/rick-install.cjs'));
    for (const b of bundles) {
      const tgz = join(out, `${b}-9.8.7.tgz`);
      await run('gpgv', ['--keyring', keyring, `${tgz}.sig`, tgz]);
      // Every bundle carries the single-file installer of this very build.
      const archive = parseBundleArchive(await readFile(tgz));
      expect(archive.files.get('installer/rick-install.cjs')?.equals(installer)).toBe(true);
      expect(archive.manifest.version).toBe('9.8.7');
      // And rick-bundle verify read it as hosts do.
      expect(r.stdout).toContain(`release: verified ${b}-9.8.7.tgz as hosts read it\n`);
    }
  }, 180_000);

  it('refuses to write into a directory that already holds files', async () => {
    const out = join(dir, 'busy');
    await mkdir(out);
    await writeFile(join(out, 'old.tgz'), 'x');
    const error = await release(out).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error?.code).toBe(2);
    expect(error?.stderr).toContain(`release: ${out} is not empty; refusing to mix releases`);
    expect(await readdir(out)).toEqual(['old.tgz']);
  });
});
