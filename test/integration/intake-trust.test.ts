import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { defaultArchiveLimits } from '../../src/bundle/archive.js';
import { readVerifiedBundle } from '../../src/host/intake/trust.js';
import { makeTestKey, type TestKey, writeSignedBundle } from '../helpers/bundle-factory.js';
import { asyncRefusal } from '../helpers/hostile-tar.js';

let key: TestKey;
let work: string;
let keyring: string;

beforeAll(async () => {
  key = await makeTestKey();
});
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'rick-trust-'));
  keyring = join(work, 'keys');
  await mkdir(keyring);
  await chmod(keyring, 0o755);
  await writeFile(join(keyring, 'release.asc'), key.publicKeyArmored, { mode: 0o644 });
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('readVerifiedBundle', () => {
  it('verifies, then parses the same bytes: signer, sha256 and contents', async () => {
    const written = await writeSignedBundle(join(work, 'in'), key);
    const result = await readVerifiedBundle({
      bundlePath: written.bundlePath,
      keyringPath: keyring,
    });
    expect(result.bytes.equals(written.tgz)).toBe(true);
    expect(result.sha256).toBe(createHash('sha256').update(written.tgz).digest('hex'));
    expect(result.signer.fingerprint).toBe(key.fingerprint);
    expect(result.contents.manifest).toEqual(written.manifest);
  });

  it('accepts an explicit signature path, an armored signature and a single key file', async () => {
    const written = await writeSignedBundle(join(work, 'in'), key);
    const armored = await openpgp.sign({
      message: await openpgp.createMessage({ binary: written.tgz }),
      signingKeys: key.privateKey,
      detached: true,
      format: 'armored',
    });
    const sigPath = join(work, 'elsewhere.asc');
    await writeFile(sigPath, armored);
    const result = await readVerifiedBundle({
      bundlePath: written.bundlePath,
      signaturePath: sigPath,
      keyringPath: join(keyring, 'release.asc'),
      requireKeyOwner: process.getuid?.() ?? 0,
    });
    expect(result.signer.fingerprint).toBe(key.fingerprint);
  });

  it('refuses key files not owned by the required owner', async () => {
    const written = await writeSignedBundle(join(work, 'in'), key);
    const other = (process.getuid?.() ?? 0) + 4242;
    const error = await asyncRefusal(() =>
      readVerifiedBundle({
        bundlePath: written.bundlePath,
        keyringPath: keyring,
        requireKeyOwner: other,
      }),
    );
    expect(error.code).toBe('KEYRING_INSECURE');
    expect(error.message).toMatch(
      new RegExp(`is owned by uid \\d+, not ${other}; refusing to trust it`),
    );
  });

  it('refuses an empty keyring directory rather than trusting nothing as everything', async () => {
    const written = await writeSignedBundle(join(work, 'in'), key);
    await rm(join(keyring, 'release.asc'));
    const error = await asyncRefusal(() =>
      readVerifiedBundle({ bundlePath: written.bundlePath, keyringPath: keyring }),
    );
    expect(error.code).toBe('KEYRING_INVALID');
    expect(error.message).toBe(`no public keys found in ${keyring}`);
  });

  it('names a missing bundle', async () => {
    const written = await writeSignedBundle(join(work, 'in'), key);
    await rm(written.bundlePath);
    const error = await asyncRefusal(() =>
      readVerifiedBundle({ bundlePath: written.bundlePath, keyringPath: keyring }),
    );
    expect(error.code).toBe('INPUT_NOT_FOUND');
    expect(error.message).toBe(`bundle ${written.bundlePath} does not exist`);
  });

  it('refuses a bundle larger than the compressed limit before reading it', async () => {
    const written = await writeSignedBundle(join(work, 'in'), key);
    const error = await asyncRefusal(() =>
      readVerifiedBundle({
        bundlePath: written.bundlePath,
        keyringPath: keyring,
        limits: { ...defaultArchiveLimits, maxCompressedBytes: 100 },
      }),
    );
    expect(error.code).toBe('BUNDLE_INVALID');
    expect(error.message).toMatch(/ is \d+ bytes, more than the limit of 100$/);
  });

  it('refuses a FIFO in place of the bundle without hanging on it', async () => {
    const written = await writeSignedBundle(join(work, 'in'), key);
    const fifo = join(work, 'fifo.tgz');
    execFileSync('mkfifo', [fifo]);
    await writeFile(`${fifo}.sig`, await readFile(written.signaturePath));
    const error = await asyncRefusal(() =>
      readVerifiedBundle({ bundlePath: fifo, keyringPath: keyring }),
    );
    expect(error.message).toBe(`bundle ${fifo} is not a regular file`);
  });
});
