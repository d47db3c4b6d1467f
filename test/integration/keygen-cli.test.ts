import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildTestBundle } from '../helpers/bundle-factory.js';
import { makeTempDir, runBundleCli } from '../helpers/rick-bundle.js';

let work: string;
beforeEach(async () => {
  work = await makeTempDir('rick-keygen-');
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('rick-bundle keygen', () => {
  it('writes an ed25519 key pair, the private key 0600, and prints its fingerprint', async () => {
    const out = join(work, 'keys');
    const result = await runBundleCli(
      ['keygen', '--name', 'rick releases', '--email', 'r@example.org', '--out', out],
      {
        env: { PATH: process.env.PATH },
      },
    );
    expect(result.code).toBe(0);
    const fingerprint = /fingerprint ([0-9A-F]{40})/.exec(result.stdout)?.[1];
    expect(fingerprint).toBeDefined();
    expect(result.stdout).toContain('NOT passphrase-protected');
    expect((await stat(join(out, 'signing-key.asc'))).mode & 0o777).toBe(0o600);
    const pub = await openpgp.readKey({
      armoredKey: await readFile(join(out, 'signing-key.pub.asc'), 'utf8'),
    });
    expect(pub.isPrivate()).toBe(false);
    expect(pub.getFingerprint().toUpperCase()).toBe(fingerprint);
    expect(pub.getAlgorithmInfo()).toMatchObject({
      algorithm: 'eddsaLegacy',
      curve: 'ed25519Legacy',
    });
    const userIds = pub.getUserIDs();
    expect(userIds).toEqual(['rick releases <r@example.org>']);
  });

  it('protects the private key with the passphrase from the environment; sign needs it', async () => {
    const out = join(work, 'keys');
    const env = { PATH: process.env.PATH, RICK_SIGNING_PASSPHRASE: 'correct horse' };
    const made = await runBundleCli(['keygen', '--name', 'rick', '--out', out], { env });
    expect(made.code).toBe(0);
    expect(made.stdout).toContain('passphrase-protected');
    const priv = await openpgp.readPrivateKey({
      armoredKey: await readFile(join(out, 'signing-key.asc'), 'utf8'),
    });
    expect(priv.isDecrypted()).toBe(false);

    const bundle = join(work, 'demo-1.0.0.tgz');
    await writeFile(bundle, buildTestBundle().tgz);
    const without = await runBundleCli(['sign', bundle, '--key', join(out, 'signing-key.asc')], {
      env: { PATH: process.env.PATH },
    });
    expect(without.code).toBe(2);
    expect(without.stderr).toMatch(
      /error KEY_INVALID: the signing key is protected by a passphrase/,
    );
    expect(without.stderr).toContain(
      'hint: set the passphrase in the environment variable RICK_SIGNING_PASSPHRASE',
    );
    const wrong = await runBundleCli(['sign', bundle, '--key', join(out, 'signing-key.asc')], {
      env: { PATH: process.env.PATH, RICK_SIGNING_PASSPHRASE: 'wrong' },
    });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/error KEY_INVALID: cannot unlock the signing key/);
    expect((await readdir(work)).filter((f) => f.endsWith('.sig'))).toEqual([]);

    const custom = await runBundleCli(
      ['sign', bundle, '--key', join(out, 'signing-key.asc'), '--passphrase-env', 'MY_PASS'],
      { env: { PATH: process.env.PATH, MY_PASS: 'correct horse' } },
    );
    expect(custom.code).toBe(0);
    const verified = await runBundleCli(
      ['verify', bundle, '--keyring', join(out, 'signing-key.pub.asc')],
      {
        env: { PATH: process.env.PATH },
      },
    );
    expect(verified.code).toBe(0);
  });

  it('never overwrites an existing key', async () => {
    const out = join(work, 'keys');
    const env = { PATH: process.env.PATH };
    expect((await runBundleCli(['keygen', '--name', 'one', '--out', out], { env })).code).toBe(0);
    const before = await readFile(join(out, 'signing-key.asc'));
    const again = await runBundleCli(['keygen', '--name', 'two', '--out', out], { env });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/signing-key\.asc already exists; refusing to overwrite a key/);
    expect((await readFile(join(out, 'signing-key.asc'))).equals(before)).toBe(true);
    expect((await readdir(out)).sort()).toEqual(['signing-key.asc', 'signing-key.pub.asc']);
  });

  it('has no passphrase argument', async () => {
    const result = await runBundleCli(['sign', 'x.tgz', '--key', 'k.asc', '--passphrase', 'p'], {
      env: { PATH: process.env.PATH },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown option '--passphrase'/);
  });
});
