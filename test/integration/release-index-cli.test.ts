/**
 * `rick-bundle index` through its real program: it reads signed bundles back
 * as a host would, grows the serial from the previous index (whose signature
 * it checks first), and signs index.json with a binary detached signature
 * that gpgv, the host's verifier, accepts.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIndex } from '../../src/bundle/release-index.js';
import { ExitCode } from '../../src/errors.js';
import { keyringFor, verifyWithGpgv } from '../../src/host/intake/gpgv.js';
import { makeTestKey, sha256, type TestKey, writeSignedBundle } from '../helpers/bundle-factory.js';
import { makeTempDir, runBundleCli } from '../helpers/rick-bundle.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let work: string;
let key: TestKey;
let other: TestKey;
let keyFile: string;
let otherKeyFile: string;
const env = { PATH: process.env.PATH };

beforeAll(async () => {
  work = await makeTempDir('rick-index-cli-');
  key = await makeTestKey('rick release');
  other = await makeTestKey('someone else');
  keyFile = join(work, 'signing-key.asc');
  otherKeyFile = join(work, 'other-key.asc');
  await writeFile(keyFile, key.privateKeyArmored, { mode: 0o600 });
  await writeFile(otherKeyFile, other.privateKeyArmored, { mode: 0o600 });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function gpgvAccepts(dir: string, by: TestKey): Promise<string> {
  const keyring = keyringFor(
    [{ path: 'release.asc', data: Buffer.from(by.publicKeyArmored) }],
    'k',
  );
  const verified = await verifyWithGpgv(
    await readFile(join(dir, 'index.json')),
    await readFile(join(dir, 'index.json.sig')),
    keyring,
  );
  return verified.fingerprint;
}

describe('rick-bundle index', () => {
  it('lists signed bundles, grows the serial, and signs what gpgv accepts', async () => {
    const dist = join(work, 'dist');
    const b1 = await writeSignedBundle(dist, key, { version: '1.0.0' });
    const out = join(work, 'index-1');
    const first = await runBundleCli(
      [
        'index',
        '--key',
        keyFile,
        '--out',
        out,
        '--new',
        '--add',
        b1.bundlePath,
        '--location',
        '../../download/v1.0.0/',
        '--waves',
        '0h:5,1d:100',
        '--issued',
        '2026-01-10T00:00:00Z',
      ],
      { env, now: () => new Date('2026-01-10T00:05:00Z') },
    );
    expect(first.stderr).toBe('');
    expect(first.code).toBe(ExitCode.ok);
    expect(first.stdout).toContain(`wrote ${join(out, 'index.json')}\n`);
    expect(first.stdout).toContain(
      '  serial 1768003200, issued 2026-01-10T00:00:00Z, expires 2026-01-17T00:00:00Z\n',
    );
    expect(first.stdout).toContain('  added demo 1.0.0 (stable)\n');
    expect(await gpgvAccepts(out, key)).toBe(key.fingerprint);
    // A binary detached signature, as for bundles.
    expect((await readFile(join(out, 'index.json.sig'))).toString('latin1')).not.toContain(
      '-----BEGIN',
    );
    const index1 = parseIndex(await readFile(join(out, 'index.json'), 'utf8'), 'index 1');
    expect(index1.releases).toEqual([
      {
        bundle: 'demo',
        version: '1.0.0',
        channel: 'stable',
        sha256: sha256(b1.tgz),
        size: b1.tgz.length,
        files: { bundle: 'demo-1.0.0.tgz', signature: 'demo-1.0.0.tgz.sig' },
        location: '../../download/v1.0.0/',
        published: '2026-01-10T00:00:00Z',
        rollout: [
          { at: '2026-01-10T00:00:00Z', percent: 5 },
          { at: '2026-01-11T00:00:00Z', percent: 100 },
        ],
      },
    ]);

    // The next release, from the previous index, issued by the clock.
    const b2 = await writeSignedBundle(dist, key, { version: '1.1.0-rc.1' });
    const out2 = join(work, 'index-2');
    const second = await runBundleCli(
      [
        'index',
        '--key',
        keyFile,
        '--out',
        out2,
        '--previous',
        join(out, 'index.json'),
        '--add',
        b2.bundlePath,
        '--valid-for',
        '2d',
      ],
      { env, now: () => new Date('2026-01-10T00:00:00.500Z') },
    );
    expect(second.stderr).toBe('');
    expect(second.code).toBe(ExitCode.ok);
    const index2 = parseIndex(await readFile(join(out2, 'index.json'), 'utf8'), 'index 2');
    expect(index2.serial).toBe(index1.serial + 1);
    expect(index2.expires).toBe('2026-01-12T00:00:00.500Z');
    expect(index2.releases.map((r) => [r.version, r.channel])).toEqual([
      ['1.0.0', 'stable'],
      ['1.1.0-rc.1', 'prerelease'],
    ]);
    expect(await gpgvAccepts(out2, key)).toBe(key.fingerprint);

    // Re-signing changes nothing but the serial and the times.
    const out3 = join(work, 'index-3');
    const resigned = await runBundleCli(
      ['index', '--key', keyFile, '--out', out3, '--previous', join(out2, 'index.json')],
      { env, now: () => new Date('2026-01-11T06:00:00Z') },
    );
    expect(resigned.code).toBe(ExitCode.ok);
    const index3 = parseIndex(await readFile(join(out3, 'index.json'), 'utf8'), 'index 3');
    expect(index3.serial).toBe(Date.parse('2026-01-11T06:00:00Z') / 1000);
    expect(index3.releases).toEqual(index2.releases);
    expect(index3.expires).toBe('2026-01-18T06:00:00Z');

    // A yank, then its refusal without a reason.
    const yanked = await runBundleCli(
      [
        'index',
        '--key',
        keyFile,
        '--out',
        out3,
        '--previous',
        join(out3, 'index.json'),
        '--yank',
        'demo@1.0.0',
        '--reason',
        'loses uploads',
      ],
      { env, now: () => new Date('2026-01-11T07:00:00Z') },
    );
    expect(yanked.code).toBe(ExitCode.ok);
    expect(yanked.stdout).toContain('  yanked demo 1.0.0: loses uploads\n');
    const index4 = parseIndex(await readFile(join(out3, 'index.json'), 'utf8'), 'index 4');
    expect(index4.yanked).toEqual([
      { bundle: 'demo', version: '1.0.0', reason: 'loses uploads', yanked: '2026-01-11T07:00:00Z' },
    ]);
    expect(await gpgvAccepts(out3, key)).toBe(key.fingerprint);
  });

  describe('refuses, writing nothing', () => {
    async function expectRefused(args: string[], code: number, message: string): Promise<void> {
      const before = await snapshotTree(work);
      const r = await runBundleCli(['index', '--key', keyFile, ...args], {
        env,
        now: () => new Date('2026-01-11T08:00:00Z'),
      });
      expect(r.stderr).toContain(message);
      expect(r.code).toBe(code);
      expect(diffTrees(before, await snapshotTree(work))).toEqual([]);
    }

    it('a previous index signed by another key', async () => {
      const dir = join(work, 'foreign');
      const made = await runBundleCli(['index', '--key', otherKeyFile, '--out', dir, '--new'], {
        env,
      });
      expect(made.code).toBe(ExitCode.ok);
      await expectRefused(
        ['--out', join(work, 'never'), '--previous', join(dir, 'index.json')],
        ExitCode.untrustedSignature,
        `error SIGNATURE_INVALID: the previous index ${join(dir, 'index.json')} is not signed by the signing key`,
      );
    });

    it('a bundle whose signature is not by the signing key', async () => {
      const b = await writeSignedBundle(join(work, 'foreign-bundle'), other, { version: '2.0.0' });
      await expectRefused(
        ['--out', join(work, 'never'), '--new', '--add', b.bundlePath],
        ExitCode.untrustedSignature,
        `error SIGNATURE_INVALID: ${b.bundlePath}.sig is not a signature of ${b.bundlePath} by the signing key`,
      );
    });

    it('a yank without a reason, and waves that go backwards', async () => {
      await expectRefused(
        ['--out', join(work, 'never'), '--new', '--yank', 'demo@1.0.0'],
        ExitCode.usage,
        'error USAGE: --yank needs --reason',
      );
      await expectRefused(
        ['--out', join(work, 'never'), '--new', '--rollout', '1.0.0', '--waves', '1d:50,0h:100'],
        ExitCode.usage,
        'error USAGE: waves must start one after the other, each covering more hosts (1d:50,0h:100)',
      );
    });

    it('a yank without --previous: the new index would drop every release', async () => {
      await expectRefused(
        ['--out', join(work, 'never'), '--yank', 'demo@1.0.0', '--reason', 'loses uploads'],
        ExitCode.usage,
        'error USAGE: no --previous index: the new index would list none of the releases and yanks published so far',
      );
      await expectRefused(
        ['--out', join(work, 'never')],
        ExitCode.usage,
        'pass --previous index.json (the index published now, its .sig beside it), or --new to start the first index',
      );
      await expectRefused(
        ['--out', join(work, 'never'), '--new', '--previous', join(work, 'index-1/index.json')],
        ExitCode.usage,
        'error USAGE: --previous and --new contradict each other',
      );
    });

    it('an index that is expired, or expires within the hour', async () => {
      // The clock of expectRefused says 2026-01-11T08:00:00Z.
      await expectRefused(
        [
          '--out',
          join(work, 'never'),
          '--new',
          '--issued',
          '2026-01-11T06:00:00Z',
          '--valid-for',
          '1h',
        ],
        ExitCode.usage,
        'error USAGE: the index would expire at 2026-01-11T07:00:00Z, before now (2026-01-11T08:00:00Z): hosts refuse an expired index',
      );
      await expectRefused(
        [
          '--out',
          join(work, 'never'),
          '--new',
          '--issued',
          '2026-01-11T06:30:00Z',
          '--valid-for',
          '2h',
        ],
        ExitCode.usage,
        'error USAGE: the index would expire at 2026-01-11T08:30:00Z, within the hour of now (2026-01-11T08:00:00Z)',
      );
      await expectRefused(
        ['--out', join(work, 'never'), '--new', '--valid-for', '30m'],
        ExitCode.usage,
        'error USAGE: --valid-for 30m: an index must be valid for at least 1h',
      );
    });

    it('flags that change nothing', async () => {
      const never = ['--out', join(work, 'never'), '--new'];
      await expectRefused(
        [...never, '--waves', '0h:5,1d:100'],
        ExitCode.usage,
        'error USAGE: --waves changes nothing without --add or --rollout',
      );
      await expectRefused(
        [...never, '--reason', 'why not'],
        ExitCode.usage,
        'error USAGE: --reason changes nothing without --yank',
      );
      await expectRefused(
        [...never, '--location', '../../download/v1.0.0/'],
        ExitCode.usage,
        'error USAGE: --location changes nothing without --add',
      );
      await expectRefused(
        [...never, '--channel', 'stable'],
        ExitCode.usage,
        'error USAGE: --channel changes nothing without --add',
      );
      await expectRefused(
        [...never, '--keyring', keyFile],
        ExitCode.usage,
        'error USAGE: --keyring changes nothing without --previous',
      );
    });

    it('--valid-for says in its help what it accepts', async () => {
      const help = await runBundleCli(['index', '--help'], { env });
      expect(help.stdout.replace(/\s+/g, ' ')).toContain(
        'how long hosts accept the index, at least 1h: 90m, 12h, 7d',
      );
      const accepted = await runBundleCli(
        [
          'index',
          '--key',
          keyFile,
          '--out',
          join(work, 'index-90m'),
          '--new',
          '--valid-for',
          '90m',
        ],
        { env },
      );
      expect(accepted.stderr).toBe('');
      expect(accepted.code).toBe(ExitCode.ok);
    });
  });
});
