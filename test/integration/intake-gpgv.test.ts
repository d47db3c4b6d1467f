/**
 * The host's signature check through the real gpgv (src/host/intake/gpgv.ts): what it
 * accepts besides the plain case (binary keys, co-signatures by unknown
 * keys), what it refuses that the named hostile inputs do not cover, and a
 * host without gpgv.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDetached } from '../../src/bundle/openpgp.js';
import { ExitCode, type RickError } from '../../src/errors.js';
import {
  MAX_BUNDLE_BYTES,
  startVerification,
  takeVerification,
  type VerifyRequest,
} from '../../src/host/intake/signature.js';
import { readVerifiedBundle } from '../../src/host/intake/trust.js';
import {
  makeTestKey,
  type TestKey,
  type WrittenBundle,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { requireBuiltCli, runCli } from '../helpers/cli-process.js';
import { hasGnupg, makeGnupgHome } from '../helpers/gnupg.js';
import { makeHostTree } from '../helpers/host-tree.js';
import { asyncRefusal } from '../helpers/hostile-tar.js';
import { expectTreeUnchanged, snapshotTree } from '../helpers/tree-snapshot.js';

let trusted: TestKey;
let other: TestKey;
let work: string;

beforeAll(async () => {
  trusted = await makeTestKey('rick test');
  other = await makeTestKey('rick test');
  work = await mkdtemp(join(tmpdir(), 'rick-gpgv-test-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let keyrings = 0;
async function keyringWith(name: string, data: string | Uint8Array): Promise<string> {
  const dir = join(work, `keys-${keyrings++}`);
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755);
  await writeFile(join(dir, name), data, { mode: 0o644 });
  return dir;
}

/**
 * A refusal seen from readVerifiedBundle, again through the built
 * rick-install on a host tree: the same exit code and message, and neither
 * the host tree nor the bundle, its signature and the keyring changed.
 */
async function refusedByInstall(written: WrittenBundle, keyring: string, error: RickError) {
  requireBuiltCli();
  const tree = await makeHostTree(trusted);
  try {
    const host = await snapshotTree(tree.root, { mtime: true });
    const inputs = await snapshotTree(dirname(written.bundlePath), { mtime: true });
    const keys = await snapshotTree(keyring, { mtime: true });
    const r = await runCli([written.bundlePath, '--keyring', keyring, '--root', tree.root]);
    expect(r.stderr.split('\n')[0]).toBe(`error ${error.code}: ${error.message}`);
    expect(r.code).toBe(error.exitCode);
    await expectTreeUnchanged(tree.root, host, { mtime: true });
    await expectTreeUnchanged(dirname(written.bundlePath), inputs, { mtime: true });
    await expectTreeUnchanged(keyring, keys, { mtime: true });
  } finally {
    await tree.cleanup();
  }
}

describe('signature check by gpgv', () => {
  it('reads a binary (.gpg) key file as well as an armored one', async () => {
    const written = await writeSignedBundle(join(work, 'binary'), trusted);
    const keyring = await keyringWith('release.gpg', trusted.publicKeys[0]?.write() ?? '');
    const result = await readVerifiedBundle({
      bundlePath: written.bundlePath,
      keyringPath: keyring,
    });
    expect(result.signer.fingerprint).toBe(trusted.fingerprint);
  });

  it('accepts a good signature by the trusted key next to one by a key it does not know', async () => {
    const written = await writeSignedBundle(join(work, 'cosigned'), trusted);
    const both = Buffer.concat([
      await signDetached(written.tgz, trusted.privateKey),
      await signDetached(written.tgz, other.privateKey),
    ]);
    await writeFile(written.signaturePath, both);
    const keyring = await keyringWith('release.asc', trusted.publicKeyArmored);
    const result = await readVerifiedBundle({
      bundlePath: written.bundlePath,
      keyringPath: keyring,
    });
    expect(result.signer.fingerprint).toBe(trusted.fingerprint);
  });

  it('refuses a good signature next to a bad one by the same trusted key', async () => {
    const written = await writeSignedBundle(join(work, 'goodbad'), trusted);
    const both = Buffer.concat([
      await signDetached(written.tgz, trusted.privateKey),
      await signDetached(Buffer.from('other bytes'), trusted.privateKey),
    ]);
    await writeFile(written.signaturePath, both);
    const keyring = await keyringWith('release.asc', trusted.publicKeyArmored);
    const error = await asyncRefusal(() =>
      readVerifiedBundle({ bundlePath: written.bundlePath, keyringPath: keyring }),
    );
    expect(error.code).toBe('SIGNATURE_INVALID');
    expect(error.message).toMatch(
      /^no valid signature by a trusted key \(key [0-9A-F]{16}: BAD signature/,
    );
    await refusedByInstall(written, keyring, error);
  });

  /** A signing key made `ageDays` ago, valid for `validDays` when given. */
  async function agedKey(ageDays: number, validDays?: number) {
    const created = new Date(Date.now() - ageDays * 86_400_000);
    const { privateKey, publicKey } = await openpgp.generateKey({
      type: 'ecc',
      curve: 'ed25519Legacy',
      userIDs: [{ name: 'rick aged' }],
      date: created,
      ...(validDays ? { keyExpirationTime: validDays * 86_400 } : {}),
      format: 'object',
    });
    return { privateKey, publicKey, created };
  }

  async function signAt(data: Uint8Array, key: openpgp.PrivateKey, date: Date) {
    return openpgp.sign({
      message: await openpgp.createMessage({ binary: data }),
      signingKeys: key,
      detached: true,
      format: 'binary',
      date,
    });
  }

  it('refuses a signature made while the key was valid once the key has expired', async () => {
    const { privateKey, publicKey, created } = await agedKey(10, 1);
    const written = await writeSignedBundle(join(work, 'expired'), trusted);
    await writeFile(
      written.signaturePath,
      await signAt(written.tgz, privateKey, new Date(created.getTime() + 3_600_000)),
    );
    const keyring = await keyringWith('release.asc', publicKey.armor());
    const error = await asyncRefusal(() =>
      readVerifiedBundle({ bundlePath: written.bundlePath, keyringPath: keyring }),
    );
    expect(error.code).toBe('SIGNATURE_INVALID');
    expect(error.message).toMatch(/the key has expired/);
    await refusedByInstall(written, keyring, error);
  });

  it('refuses a signature by a key that has since been revoked', async () => {
    const { privateKey, created } = await agedKey(10);
    const written = await writeSignedBundle(join(work, 'revoked'), trusted);
    await writeFile(
      written.signaturePath,
      await signAt(written.tgz, privateKey, new Date(created.getTime() + 3_600_000)),
    );
    const { publicKey: revoked } = await openpgp.revokeKey({ key: privateKey, format: 'object' });
    const keyring = await keyringWith('release.asc', revoked.armor());
    const error = await asyncRefusal(() =>
      readVerifiedBundle({ bundlePath: written.bundlePath, keyringPath: keyring }),
    );
    expect(error.code).toBe('SIGNATURE_INVALID');
    expect(error.message).toMatch(/the key is revoked/);
    await refusedByInstall(written, keyring, error);
  });

  // openpgp.js never signs with SHA-1 any more; GnuPG still can, and gpgv
  // still calls such a signature good.
  it.skipIf(!hasGnupg)('refuses a good signature made with SHA-1 (signed by GnuPG)', async () => {
    const { gpg, close } = await makeGnupgHome(join(work, 'gnupg-sha1'));
    try {
      gpg(['--passphrase', '', '--quick-generate-key', 'rick sha1', 'rsa2048', 'sign', 'never']);
      const written = await writeSignedBundle(join(work, 'sha1'), trusted);
      gpg([
        '--digest-algo',
        'SHA1',
        '--detach-sign',
        '--output',
        written.signaturePath,
        written.bundlePath,
      ]);
      const keyring = await keyringWith('release.gpg', gpg(['--export']));
      // gpgv itself accepts it: the refusal is rick's policy.
      const status = spawnSync('gpgv', [
        '--status-fd',
        '1',
        '--keyring',
        join(keyring, 'release.gpg'),
        written.signaturePath,
        written.bundlePath,
      ]);
      expect(status.status).toBe(0);
      expect(status.stdout.toString()).toMatch(/\[GNUPG:\] VALIDSIG \S+ \S+ \d+ 0 4 0 1 2 00 /);
      const error = await asyncRefusal(() =>
        readVerifiedBundle({ bundlePath: written.bundlePath, keyringPath: keyring }),
      );
      expect(error.code).toBe('SIGNATURE_INVALID');
      expect(error.message).toMatch(/weak hash algorithm 2/);
      await refusedByInstall(written, keyring, error);
    } finally {
      close();
    }
  });

  it('refuses a private key in the keyring', async () => {
    const written = await writeSignedBundle(join(work, 'private'), trusted);
    const keyring = await keyringWith('release.asc', trusted.privateKey.armor());
    const error = await asyncRefusal(() =>
      readVerifiedBundle({ bundlePath: written.bundlePath, keyringPath: keyring }),
    );
    expect(error.code).toBe('KEYRING_INVALID');
    expect(error.message).toMatch(/release\.asc holds a private key; refusing to use it$/);
    await refusedByInstall(written, keyring, error);
  });

  it('names gpgv when it is missing', async () => {
    const written = await writeSignedBundle(join(work, 'nogpgv'), trusted);
    const keyring = await keyringWith('release.asc', trusted.publicKeyArmored);
    const error = await asyncRefusal(() =>
      readVerifiedBundle({
        bundlePath: written.bundlePath,
        keyringPath: keyring,
        gpgv: { program: join(work, 'no-such-gpgv') },
      }),
    );
    expect(error.code).toBe('PREREQUISITE_MISSING');
    expect(error.message).toMatch(
      /no-such-gpgv is not installed: rick-install checks bundle signatures with it$/,
    );
  });

  it('rick-install on a host without gpgv: exit 5, the host tree unchanged', async () => {
    requireBuiltCli();
    const tree = await makeHostTree(trusted);
    try {
      const written = await writeSignedBundle(tree.work, trusted);
      const before = await snapshotTree(tree.root);
      const emptyPath = join(tree.work, 'empty-path');
      await mkdir(emptyPath);
      const r = await runCli([written.bundlePath, '--root', tree.root], { PATH: emptyPath });
      expect(r.stderr).toMatch(/^error PREREQUISITE_MISSING: gpgv is not installed/);
      expect(r.code).toBe(ExitCode.missingPrerequisite);
      await expectTreeUnchanged(tree.root, before);
    } finally {
      await tree.cleanup();
    }
  });
});

describe('a verification started ahead of time', () => {
  it('is taken only by exactly the same request, and only once', async () => {
    const good = await writeSignedBundle(join(work, 'early-good'), trusted);
    const bad = await writeSignedBundle(join(work, 'early-bad'), other);
    const keyring = await keyringWith('release.asc', trusted.publicKeyArmored);
    const request = (bundlePath: string): VerifyRequest => ({
      bundlePath,
      keyringPath: keyring,
      maxBytes: MAX_BUNDLE_BYTES,
    });
    // Started for the untrusted bundle: asking for the good one must not get its refusal...
    const settled = startVerification(request(bad.bundlePath));
    const result = await takeVerification(request(good.bundlePath));
    expect(result.signer.fingerprint).toBe(trusted.fingerprint);
    expect(result.bytes.equals(good.tgz)).toBe(true);
    // ...asking for the bad one gets the refusal started for it...
    const error = await asyncRefusal(() => takeVerification(request(bad.bundlePath)));
    expect(error.code).toBe('SIGNATURE_INVALID');
    await settled;
    // ...and a started verification is taken once: the next ask verifies anew.
    await writeFile(bad.signaturePath, await signDetached(bad.tgz, trusted.privateKey));
    expect((await takeVerification(request(bad.bundlePath))).signer.fingerprint).toBe(
      trusted.fingerprint,
    );
  });

  it('reads everything and starts gpgv before it first yields', async () => {
    const written = await writeSignedBundle(join(work, 'early-sync'), trusted);
    const keyring = await keyringWith('release.asc', trusted.publicKeyArmored);
    const settled = startVerification({
      bundlePath: written.bundlePath,
      keyringPath: keyring,
      maxBytes: MAX_BUNDLE_BYTES,
    });
    // The files are read synchronously: removing them now changes nothing.
    await rm(written.bundlePath);
    await rm(written.signaturePath);
    const result = await takeVerification({
      bundlePath: written.bundlePath,
      keyringPath: keyring,
      maxBytes: MAX_BUNDLE_BYTES,
    });
    expect(result.bytes.equals(written.tgz)).toBe(true);
    await settled;
  });
});
