/**
 * `rick-bundle keys` through its real program: it writes keys.json and a
 * binary detached signature by the root key that both verifiers accept
 * (gpgv, as hosts check it, and openpgp.js, as the next run checks
 * --previous), grows the serial, and refuses what changes nothing before
 * anything is written.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyDetached } from '../../src/bundle/openpgp.js';
import { ExitCode } from '../../src/errors.js';
import { keyringFor, verifyWithGpgv } from '../../src/host/intake/gpgv.js';
import { parseHandover, parseKeyList } from '../../src/trust/key-list.js';
import { makeTestKey, type TestKey, writeSignedBundle } from '../helpers/bundle-factory.js';
import { makeTempDir, runBundleCli } from '../helpers/rick-bundle.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let work: string;
let root: TestKey;
let root2: TestKey;
let a: TestKey;
let b: TestKey;
const env = { PATH: process.env.PATH };
const now = () => new Date('2026-01-01T00:00:00Z');
const run = (...args: string[]) => runBundleCli(args, { cwd: work, env, now });

beforeAll(async () => {
  work = await makeTempDir('rick-keys-cli-');
  [root, root2, a, b] = await Promise.all([
    makeTestKey('rick root'),
    makeTestKey('rick root 2'),
    makeTestKey('release A'),
    makeTestKey('release B'),
  ]);
  for (const [name, k] of Object.entries({ root, root2, a, b })) {
    await writeFile(join(work, `${name}.asc`), k.privateKeyArmored, { mode: 0o600 });
    await writeFile(join(work, `${name}.pub.asc`), k.publicKeyArmored);
  }
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function verifiedByBoth(dir: string, file: string, by: TestKey): Promise<void> {
  const bytes = await readFile(join(dir, file));
  const signature = await readFile(join(dir, `${file}.sig`));
  const keyring = keyringFor([{ path: 'root.asc', data: Buffer.from(by.publicKeyArmored) }], 'k');
  expect((await verifyWithGpgv(bytes, signature, keyring)).fingerprint).toBe(by.fingerprint);
  expect((await verifyDetached(bytes, signature, by.publicKeys)).fingerprint).toBe(by.fingerprint);
}

describe('rick-bundle keys', () => {
  it('writes a first list, then the next from it: serial + 1, signed by the root, checked by gpgv and openpgp.js', async () => {
    let r = await run(
      'keys',
      '--root-key',
      'root.asc',
      '--new',
      '--add',
      'a.pub.asc',
      '--out',
      'one',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stdout).toContain(
      `  serial 1, issued 2026-01-01T00:00:00Z, expires 2027-01-01T00:00:00Z\n`,
    );
    expect(r.stdout).toContain(`  key ${a.fingerprint} signs bundles and index\n`);
    await verifiedByBoth(join(work, 'one'), 'keys.json', root);

    r = await run(
      'keys',
      '--root-key',
      'root.asc',
      '--previous',
      'one/keys.json',
      '--add',
      'b.pub.asc',
      '--roles',
      'index',
      '--remove',
      a.fingerprint,
      '--valid-for',
      '30d',
      '--out',
      'two',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(ExitCode.ok);
    const list = parseKeyList(await readFile(join(work, 'two/keys.json'), 'utf8'), 'two');
    expect(list.serial).toBe(2);
    expect(list.expires).toBe('2026-01-31T00:00:00Z');
    expect(list.keys.map((k) => [k.fingerprint, k.roles])).toEqual([[b.fingerprint, ['index']]]);
    expect(list.keys[0]?.publicKey).toBe(`${b.publicKeyArmored.trim()}\n`);
    await verifiedByBoth(join(work, 'two'), 'keys.json', root);
  });

  it('writes a hand-over signed by the old root, and the next list by the new root with --keyring', async () => {
    expect(
      (await run('keys', '--root-key', 'root.asc', '--new', '--add', 'a.pub.asc', '--out', 'h1'))
        .code,
    ).toBe(0);
    let r = await run(
      'keys',
      '--root-key',
      'root.asc',
      '--new-root',
      'root2.pub.asc',
      '--out',
      'h1',
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`  root ${root.fingerprint} hands over to ${root2.fingerprint}\n`);
    const h = parseHandover(await readFile(join(work, 'h1/root-handover.json'), 'utf8'), 'h');
    expect(h.previous).toBe(root.fingerprint);
    expect(h.root.fingerprint).toBe(root2.fingerprint);
    await verifiedByBoth(join(work, 'h1'), 'root-handover.json', root);
    // The old list is signed by the old root: without --keyring the new root cannot vouch for it.
    r = await run(
      'keys',
      '--root-key',
      'root2.asc',
      '--previous',
      'h1/keys.json',
      '--add',
      'b.pub.asc',
      '--out',
      'h2',
    );
    expect(r.code).toBe(ExitCode.untrustedSignature);
    expect(r.stderr).toContain('error KEY_LIST_UNTRUSTED: the previous key list');
    r = await run(
      'keys',
      '--root-key',
      'root2.asc',
      '--previous',
      'h1/keys.json',
      '--keyring',
      'root.pub.asc',
      '--add',
      'b.pub.asc',
      '--out',
      'h2',
    );
    expect(r.stderr).toBe('');
    await verifiedByBoth(join(work, 'h2'), 'keys.json', root2);
  });

  it('rick-bundle verify --key-list: a bundle by a key the list names for bundles passes, others are refused', async () => {
    expect(
      (
        await run(
          'keys',
          '--root-key',
          'root.asc',
          '--new',
          '--add',
          'a.pub.asc',
          '--roles',
          'bundles',
          '--out',
          'v',
        )
      ).code,
    ).toBe(0);
    const byA = await writeSignedBundle(join(work, 'va'), a, { version: '1.0.0' });
    const byB = await writeSignedBundle(join(work, 'vb'), b, { version: '1.0.0' });
    let r = await run(
      'verify',
      byA.bundlePath,
      '--keyring',
      'root.pub.asc',
      '--key-list',
      'v/keys.json',
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`good signature by ${a.fingerprint}\n`);
    r = await run(
      'verify',
      byB.bundlePath,
      '--keyring',
      'root.pub.asc',
      '--key-list',
      'v/keys.json',
    );
    expect(r.code).toBe(ExitCode.untrustedSignature);
    expect(r.stderr).toContain('error SIGNATURE_INVALID: no valid signature by a trusted key');
    // The list must be the root's: checked against --keyring.
    r = await run('verify', byA.bundlePath, '--keyring', 'a.pub.asc', '--key-list', 'v/keys.json');
    expect(r.code).toBe(ExitCode.untrustedSignature);
    expect(r.stderr).toContain(
      `error KEY_LIST_UNTRUSTED: the key list ${join(work, 'v/keys.json')} is not signed by a key of --keyring`,
    );
  });

  describe('refuses, writing nothing', () => {
    beforeAll(async () => {
      const r = await run(
        'keys',
        '--root-key',
        'root.asc',
        '--new',
        '--add',
        'a.pub.asc',
        '--out',
        'base',
      );
      expect(r.code).toBe(0);
    });
    const cases: Array<[string, string[], string]> = [
      [
        'neither --previous nor --new',
        ['--add', 'b.pub.asc'],
        'error USAGE: no --previous key list',
      ],
      [
        '--previous and --new',
        ['--new', '--previous', 'base/keys.json'],
        'error USAGE: --previous and --new contradict each other',
      ],
      [
        '--roles without --add',
        ['--previous', 'base/keys.json', '--roles', 'index'],
        'error USAGE: --roles changes nothing without --add',
      ],
      [
        '--keyring without --previous',
        ['--new', '--add', 'b.pub.asc', '--keyring', 'root.pub.asc'],
        'error USAGE: --keyring changes nothing without --previous',
      ],
      [
        '--new-root with list flags',
        ['--new-root', 'root2.pub.asc', '--add', 'b.pub.asc'],
        'error USAGE: --new-root writes a hand-over statement, not a key list: --add does nothing with it',
      ],
      [
        'a key listed already',
        ['--previous', 'base/keys.json', '--add', 'a.pub.asc'],
        `error USAGE: --add: ${'A'}`,
      ],
      [
        'removing a key not listed',
        ['--previous', 'base/keys.json', '--remove', 'b'.repeat(40)],
        'error USAGE: --remove BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB: no such key in the list',
      ],
      [
        'removing the last key',
        ['--previous', 'base/keys.json', '--remove', 'A'],
        'error USAGE: the new list would name no key: hosts would refuse it',
      ],
      [
        'the root key as a release key',
        ['--new', '--add', 'root.pub.asc'],
        'error USAGE: --add root.pub.asc is the root key',
      ],
      [
        'a hand-over to the root itself',
        ['--new-root', 'root.pub.asc'],
        'error USAGE: --new-root root.pub.asc is the root key itself',
      ],
      [
        'a list valid less than a day',
        ['--new', '--add', 'b.pub.asc', '--valid-for', '12h'],
        'error USAGE: --valid-for 12h: a key list must be valid for at least 1d',
      ],
      [
        'an unknown role',
        ['--new', '--add', 'b.pub.asc', '--roles', 'everything'],
        'error USAGE: --roles "everything": name bundles, index, or both',
      ],
    ];
    for (const [name, args, message] of cases) {
      it(name, async () => {
        const resolved = args.map((arg) => (arg === 'A' ? a.fingerprint : arg));
        const expected = message.replace(
          `--add: A`,
          `--add: ${a.fingerprint} is already listed, for bundles and index`,
        );
        const before = await snapshotTree(work, { mtime: true });
        const r = await run('keys', '--root-key', 'root.asc', ...resolved, '--out', 'refused');
        expect(r.stderr).toContain(expected);
        expect(r.code).toBe(ExitCode.usage);
        expect(diffTrees(before, await snapshotTree(work, { mtime: true }))).toEqual([]);
      });
    }
  });
});
