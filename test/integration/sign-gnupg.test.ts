/**
 * GnuPG interoperability both ways, with a private GNUPGHOME: a signature by
 * `rick-bundle sign` verifies with gpgv, and one by `gpg --detach-sign` with
 * a gpg-generated ed25519 key verifies with `rick-bundle verify`.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestBundle } from '../helpers/bundle-factory.js';
import { type GnupgHome, hasGnupg, makeGnupgHome } from '../helpers/gnupg.js';
import { makeTempDir, runBundleCli } from '../helpers/rick-bundle.js';

describe.skipIf(!hasGnupg)('signatures interoperate with GnuPG', () => {
  let work: string;
  let gnupg: GnupgHome;
  let bundle: string;
  let rickKeys: string;
  const env = { PATH: process.env.PATH };
  const gpg = (args: string[], input?: string) => gnupg.gpg(args, input);

  beforeAll(async () => {
    work = await makeTempDir('rick-sign-');
    gnupg = await makeGnupgHome(join(work, 'gnupg'));
    bundle = join(work, 'demo-1.0.0.tgz');
    await writeFile(bundle, buildTestBundle().tgz);
    rickKeys = join(work, 'keys');
    const made = await runBundleCli(['keygen', '--name', 'rick test', '--out', rickKeys], { env });
    expect(made.code).toBe(0);
  });
  afterAll(async () => {
    gnupg?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('a signature by rick-bundle sign verifies with gpgv', async () => {
    const signed = await runBundleCli(
      ['sign', bundle, '--key', join(rickKeys, 'signing-key.asc')],
      { env },
    );
    expect(signed.code).toBe(0);
    expect(signed.stdout).toContain(`signed ${bundle}.sig`);
    // A binary (not armored) detached signature.
    const sig = await readFile(`${bundle}.sig`);
    expect(sig.toString('latin1')).not.toContain('-----BEGIN');

    const keyring = join(work, 'rick.gpg');
    gpg(['--output', keyring, '--dearmor', join(rickKeys, 'signing-key.pub.asc')]);
    const ok = spawnSync('gpgv', ['--keyring', keyring, `${bundle}.sig`, bundle]);
    expect(ok.stderr.toString()).toMatch(/Good signature from "rick test"/);
    expect(ok.status).toBe(0);

    // gpgv itself refuses the same signature over different bytes.
    const tampered = join(work, 'tampered.tgz');
    const bytes = await readFile(bundle);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1);
    await writeFile(tampered, bytes);
    const bad = spawnSync('gpgv', ['--keyring', keyring, `${bundle}.sig`, tampered]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.toString()).toMatch(/BAD signature/);

    // And rick-bundle verify accepts it against the public key.
    const verified = await runBundleCli(
      ['verify', bundle, '--keyring', join(rickKeys, 'signing-key.pub.asc')],
      { env },
    );
    expect(verified.stdout).toContain('good signature by');
    expect(verified.stdout).toContain('contents ok: demo 1.0.0');
    expect(verified.code).toBe(0);
  });

  it('a signature by gpg --detach-sign with a gpg ed25519 key verifies with rick-bundle verify', async () => {
    gpg([
      '--passphrase',
      '',
      '--quick-generate-key',
      'gpg signer <gpg@example.org>',
      'ed25519',
      'sign',
      '0',
    ]);
    const gpgSig = join(work, 'gpg.sig');
    gpg(['--output', gpgSig, '--detach-sign', bundle]);
    const pub = join(work, 'gpg-pub.asc');
    await writeFile(pub, gpg(['--armor', '--export', 'gpg@example.org']));
    await chmod(pub, 0o644);
    const fingerprint = gpg(['--with-colons', '--fingerprint', 'gpg@example.org'])
      .toString()
      .split('\n')
      .find((l) => l.startsWith('fpr:'))
      ?.split(':')[9];

    const verified = await runBundleCli(
      ['verify', bundle, '--keyring', pub, '--signature', gpgSig],
      { env },
    );
    expect(verified.stderr).toBe('');
    expect(verified.stdout).toContain(`good signature by ${fingerprint}`);
    expect(verified.code).toBe(0);

    // Against another key the same signature is refused.
    const other = await runBundleCli(
      ['verify', bundle, '--keyring', join(rickKeys, 'signing-key.pub.asc'), '--signature', gpgSig],
      { env },
    );
    expect(other.code).toBe(4);
    expect(other.stderr).toMatch(/error SIGNATURE_INVALID: no valid signature by a trusted key/);

    // A text-mode signature does not sign these exact bytes and is refused.
    const textSig = join(work, 'text.sig');
    gpg(['--output', textSig, '--textmode', '--detach-sign', bundle]);
    const text = await runBundleCli(['verify', bundle, '--keyring', pub, '--signature', textSig], {
      env,
    });
    expect(text.code).toBe(4);
    expect(text.stderr).toMatch(/not a binary document signature/);
  });
});

describe('rick-bundle sign and verify refusals', () => {
  let work: string;
  const env = { PATH: process.env.PATH };
  beforeAll(async () => {
    work = await makeTempDir('rick-sign-refusals-');
    await runBundleCli(['keygen', '--name', 'a', '--out', join(work, 'a')], { env });
    await runBundleCli(['keygen', '--name', 'b', '--out', join(work, 'b')], { env });
    await writeFile(join(work, 'demo-1.0.0.tgz'), buildTestBundle().tgz);
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('refuses a bundle changed after signing, a missing signature and a wrong key', async () => {
    const bundle = join(work, 'demo-1.0.0.tgz');
    expect(
      (await runBundleCli(['sign', bundle, '--key', join(work, 'a/signing-key.asc')], { env }))
        .code,
    ).toBe(0);
    const wrongKey = await runBundleCli(
      ['verify', bundle, '--keyring', join(work, 'b/signing-key.pub.asc')],
      { env },
    );
    expect(wrongKey.code).toBe(4);
    expect(wrongKey.stderr).toMatch(/SIGNATURE_INVALID/);

    // Under the name a host would take, so that only the signature can refuse it.
    await mkdir(join(work, 'changed'), { recursive: true });
    const changed = join(work, 'changed/demo-1.0.0.tgz');
    const bytes = await readFile(bundle);
    bytes.writeUInt8(bytes.readUInt8(100) ^ 0xff, 100);
    await writeFile(changed, bytes);
    const tampered = await runBundleCli(
      [
        'verify',
        changed,
        '--keyring',
        join(work, 'a/signing-key.pub.asc'),
        '--signature',
        `${bundle}.sig`,
      ],
      { env },
    );
    expect(tampered.code).toBe(4);
    expect(tampered.stderr).toMatch(/error SIGNATURE_INVALID/);

    const missing = await runBundleCli(
      ['verify', changed, '--keyring', join(work, 'a/signing-key.pub.asc')],
      { env },
    );
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(
      /error SIGNATURE_MISSING: cannot read signature .*changed\/demo-1\.0\.0\.tgz\.sig/,
    );
  });

  it('checks the contents after a good signature: a signed but invalid bundle is refused', async () => {
    const bad = join(work, 'bad-1.0.0.tgz');
    await writeFile(
      bad,
      buildTestBundle({ manifestPatch: (m) => ({ ...m, version: 'not-a-version' }) }).tgz,
    );
    expect(
      (await runBundleCli(['sign', bad, '--key', join(work, 'a/signing-key.asc')], { env })).code,
    ).toBe(0);
    const result = await runBundleCli(
      ['verify', bad, '--keyring', join(work, 'a/signing-key.pub.asc')],
      { env },
    );
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/error MANIFEST_INVALID: .*version: must be a semantic version/);
    await rm(bad);
    await rm(`${bad}.sig`);
  });

  it('refuses a key that is not a private key, leaving no signature', async () => {
    const bundle = join(work, 'demo-1.0.0.tgz');
    await rm(`${bundle}.sig`, { force: true });
    const result = await runBundleCli(
      ['sign', bundle, '--key', join(work, 'a/signing-key.pub.asc')],
      { env },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/error KEY_INVALID: not an armored OpenPGP private key/);
    expect((await readdir(work)).filter((f) => f.endsWith('.sig'))).toEqual([]);
  });
});
