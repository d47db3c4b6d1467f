/**
 * `rick-bundle verify` reads a bundle as hosts do: the file name against the
 * signed manifest, and the host's keyring rules. A refusal names the cause
 * and changes nothing.
 */
import { copyFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_RECORD_PATH } from '../../src/bundle/build-record.js';
import { ExitCode } from '../../src/errors.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { makeTempDir, runBundleCli } from '../helpers/rick-bundle.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let work: string;
let key: TestKey;
let pub: string;
const env = { PATH: process.env.PATH };

beforeAll(async () => {
  work = await makeTempDir('rick-verify-cli-');
  key = await makeTestKey('rick release');
  pub = join(work, 'release.asc');
  await writeFile(pub, key.publicKeyArmored, { mode: 0o644 });
  await writeSignedBundle(join(work, 'dist'), key, { version: '1.0.0' });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function refused(args: string[]) {
  const before = await snapshotTree(work);
  const r = await runBundleCli(['verify', ...args], { env });
  expect(diffTrees(before, await snapshotTree(work))).toEqual([]);
  return r;
}

describe('rick-bundle verify', () => {
  it('accepts a bundle under the name it was built with', async () => {
    const r = await runBundleCli(['verify', join(work, 'dist/demo-1.0.0.tgz'), '--keyring', pub], {
      env,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(`good signature by ${key.fingerprint}`);
    expect(r.stdout).toContain('contents ok: demo 1.0.0');
  });

  it('refuses a file whose name says another version: BUNDLE_MISMATCH, exit 3', async () => {
    const renamed = join(work, 'demo-1.0.1.tgz');
    await copyFile(join(work, 'dist/demo-1.0.0.tgz'), renamed);
    await copyFile(join(work, 'dist/demo-1.0.0.tgz.sig'), `${renamed}.sig`);
    const r = await refused([renamed, '--keyring', pub]);
    expect(r.stderr).toContain(
      'error BUNDLE_MISMATCH: demo-1.0.1.tgz holds demo 1.0.0 (its signed manifest), not demo 1.0.1 as its file name says',
    );
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stdout).toBe('');
  });

  it('refuses a name that says nothing, unless --expect says it', async () => {
    const odd = join(work, 'bundle.tgz');
    await copyFile(join(work, 'dist/demo-1.0.0.tgz'), odd);
    await copyFile(join(work, 'dist/demo-1.0.0.tgz.sig'), `${odd}.sig`);
    const r = await refused([odd, '--keyring', pub]);
    expect(r.stderr).toContain(
      'error USAGE: bundle.tgz does not say which bundle and version it holds',
    );
    expect(r.code).toBe(ExitCode.usage);
    const wrong = await refused([odd, '--keyring', pub, '--expect', 'demo@2.0.0']);
    expect(wrong.stderr).toContain('not demo 2.0.0 as --expect says');
    expect(wrong.code).toBe(ExitCode.invalidBundle);
    const ok = await runBundleCli(['verify', odd, '--keyring', pub, '--expect', 'demo@1.0.0'], {
      env,
    });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(ExitCode.ok);
  });

  it('shows a build record it cannot read as a warning, and accepts the bundle as hosts install it', async () => {
    // A record of a later rick-bundle: hosts ignore it, so verify does not refuse the bundle.
    const later = `${JSON.stringify({ schemaVersion: 2, toolchain: { node: '26.0.0', rick: '3.0.0', esbuild: null }, sbom: 'x' }, null, 2)}\n`;
    const b = await writeSignedBundle(join(work, 'later'), key, {
      version: '1.0.0',
      files: [
        ...sampleFiles('demo', 'v1'),
        { path: BUILD_RECORD_PATH, content: later, kind: 'installer', mode: 0o644 },
      ],
    });
    const r = await runBundleCli(['verify', b.bundlePath, '--keyring', pub], { env });
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain('contents ok: demo 1.0.0');
    expect(r.stdout).not.toContain('built with');
    expect(r.stderr).toBe(
      `warning: ${BUILD_RECORD_PATH} is not readable by this rick-bundle (schemaVersion: Invalid input: expected 1; (root): Unrecognized key: "sbom"); hosts ignore it\n`,
    );
  });

  it('refuses a keyring holding a private key, as hosts do', async () => {
    const secret = join(work, 'secret.asc');
    await writeFile(secret, key.privateKeyArmored, { mode: 0o600 });
    const r = await refused([join(work, 'dist/demo-1.0.0.tgz'), '--keyring', secret]);
    expect(r.stderr).toContain(
      `error KEYRING_INVALID: ${secret} holds a private key; refusing to use it`,
    );
    expect(r.code).toBe(ExitCode.untrustedSignature);
  });

  it('refuses a keyring others can write, as hosts do', async () => {
    const loose = join(work, 'loose.asc');
    await writeFile(loose, key.publicKeyArmored);
    const { chmod } = await import('node:fs/promises');
    await chmod(loose, 0o666);
    const r = await refused([join(work, 'dist/demo-1.0.0.tgz'), '--keyring', loose]);
    expect(r.stderr).toContain(`error KEYRING_INSECURE: ${loose} is group- or world-writable`);
  });
});
