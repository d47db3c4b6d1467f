/**
 * One named test for each hostile input of the host installer's intake.
 * Hostile archives are forged byte by byte here and, where the parser behind
 * the signature is the target, signed by the TRUSTED key: that is the threat
 * of a compromised build, and the only way such input reaches the parser.
 * Every test asserts the error code, the message, and that nothing on disk
 * changed.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MANIFEST_PATH } from '../../src/bundle/manifest.js';
import { signDetached } from '../../src/bundle/openpgp.js';
import { ExitCode, exitCodeFor } from '../../src/errors.js';
import { fileAccounts } from '../../src/host/intake/accounts.js';
import { checkRequiredAccounts, resolveFacts } from '../../src/host/intake/facts.js';
import { readSecretsFile, readSecretsFileIfPresent } from '../../src/host/intake/secrets.js';
import { readVerifiedBundle } from '../../src/host/intake/trust.js';
import { decideVersion } from '../../src/host/version-policy.js';
import {
  buildTestBundle,
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { type HostTree, makeHostTree, runInstaller } from '../helpers/host-tree.js';
import {
  asyncRefusal,
  type ForgedEntry,
  forgeTar,
  forgeTgz,
  type ManifestFile,
  manifestFor,
} from '../helpers/hostile-tar.js';
import { expectTreeUnchanged, snapshotTree, type TreeSnapshot } from '../helpers/tree-snapshot.js';

let trusted: TestKey;
let untrusted: TestKey;
let work: string;
let keyring: string;
let before: TreeSnapshot;

beforeAll(async () => {
  trusted = await makeTestKey('rick test');
  // Same user ID as the trusted key: only the fingerprint tells them apart.
  untrusted = await makeTestKey('rick test');
});

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'rick-hostile-'));
  keyring = join(work, 'keys');
  await mkdir(keyring, { mode: 0o755 });
  await chmod(keyring, 0o755);
  await writeFile(join(keyring, 'release.asc'), trusted.publicKeyArmored, { mode: 0o644 });
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** Writes a bundle and (unless told otherwise) its signature by `key`, then snapshots the tree. */
async function place(
  tgz: Buffer,
  signature: Uint8Array | 'none' | TestKey = trusted,
): Promise<string> {
  const bundlePath = join(work, 'demo-1.0.0.tgz');
  await writeFile(bundlePath, tgz);
  if (signature !== 'none') {
    const sig =
      signature instanceof Uint8Array ? signature : await signDetached(tgz, signature.privateKey);
    await writeFile(`${bundlePath}.sig`, sig);
  }
  before = await snapshotTree(work);
  return bundlePath;
}

async function refuseBundle(bundlePath: string, code: string, message: RegExp): Promise<string> {
  const error = await asyncRefusal(() => readVerifiedBundle({ bundlePath, keyringPath: keyring }));
  expect(error.code).toBe(code);
  expect(error.message).toMatch(message);
  await expectTreeUnchanged(work, before);
  return error.message;
}

const unit = Buffer.from('[Container]\nImage=registry.example.org/demo:1\n');
const unitFile: ManifestFile = { path: 'quadlet/demo.container', data: unit };

/** A tarball holding the manifest, the unit, and the extra (hostile) entries. */
function archiveWith(
  extra: ForgedEntry[],
  listed: ManifestFile[] = [unitFile],
  unitEntry: ForgedEntry | undefined = { path: unitFile.path, data: unit },
): Buffer {
  return forgeTgz([
    { path: MANIFEST_PATH, data: manifestFor(listed) },
    ...(unitEntry ? [unitEntry] : []),
    ...extra,
  ]);
}

describe('hostile signatures and keys', () => {
  it('refuses a bundle checked against the wrong key (keyring holds another key)', async () => {
    await writeFile(join(keyring, 'release.asc'), untrusted.publicKeyArmored);
    const bundlePath = await place(buildTestBundle().tgz, trusted);
    await refuseBundle(bundlePath, 'SIGNATURE_INVALID', /no valid signature by a trusted key/);
  });

  it('refuses a tarball changed by one byte after signing', async () => {
    const { tgz } = buildTestBundle();
    const sig = await signDetached(tgz, trusted.privateKey);
    const changed = Buffer.from(tgz);
    const at = Math.floor(changed.length / 2);
    changed[at] = (changed[at] ?? 0) ^ 0x01;
    const bundlePath = await place(changed, sig);
    await refuseBundle(bundlePath, 'SIGNATURE_INVALID', /no valid signature by a trusted key/);
  });

  it('refuses a signature by an untrusted key with the same user ID as the trusted one', async () => {
    const bundlePath = await place(buildTestBundle().tgz, untrusted);
    const message = await refuseBundle(
      bundlePath,
      'SIGNATURE_INVALID',
      /no valid signature by a trusted key/,
    );
    expect(message).not.toContain(trusted.fingerprint);
  });

  it('refuses a missing signature', async () => {
    const bundlePath = await place(buildTestBundle().tgz, 'none');
    await refuseBundle(
      bundlePath,
      'SIGNATURE_MISSING',
      /^no signature file .*demo-1\.0\.0\.tgz\.sig$/,
    );
  });

  it('refuses a garbage signature', async () => {
    const garbage = Buffer.from('this is not an OpenPGP signature at all\n'.repeat(4));
    const bundlePath = await place(buildTestBundle().tgz, garbage);
    await refuseBundle(bundlePath, 'SIGNATURE_INVALID', /^not an OpenPGP signature/);
  });

  it('refuses an empty signature file', async () => {
    const bundlePath = await place(buildTestBundle().tgz, new Uint8Array(0));
    await refuseBundle(bundlePath, 'SIGNATURE_INVALID', /the signature file is empty/);
  });

  it('refuses a text-mode signature by the trusted key', async () => {
    const { tgz } = buildTestBundle();
    const message = await openpgp.createMessage({ text: tgz.toString('latin1') });
    const sig = await openpgp.sign({
      message,
      signingKeys: trusted.privateKey,
      detached: true,
      format: 'binary',
    });
    const bundlePath = await place(tgz, sig as Uint8Array);
    await refuseBundle(
      bundlePath,
      'SIGNATURE_INVALID',
      /signature type 0x01 is not a binary document signature/,
    );
  });

  it('refuses a group-writable key file (an attacker could add a key)', async () => {
    await chmod(join(keyring, 'release.asc'), 0o664);
    const bundlePath = await place(buildTestBundle().tgz, trusted);
    await refuseBundle(bundlePath, 'KEYRING_INSECURE', /release\.asc is group- or world-writable/);
  });

  it('does not parse an unverified archive: a hostile tarball with a bad signature is a signature error', async () => {
    const hostile = archiveWith([{ path: '../../etc/shadow', data: Buffer.from('x') }]);
    const bundlePath = await place(hostile, untrusted);
    await refuseBundle(bundlePath, 'SIGNATURE_INVALID', /no valid signature by a trusted key/);
  });
});

describe('hostile archives signed by the trusted key', () => {
  it('refuses path traversal (..)', async () => {
    const bundlePath = await place(
      archiveWith([
        { path: 'quadlet/../../../etc/cron.d/evil', data: Buffer.from('* * * * * root sh\n') },
      ]),
    );
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /"quadlet\/\.\.\/\.\.\/\.\.\/etc\/cron\.d\/evil": path traversal \(\.\.\)/,
    );
  });

  it('refuses path traversal hidden in a PAX long name', async () => {
    const bundlePath = await place(
      archiveWith([
        {
          path: `quadlet/${'a/'.repeat(60)}../../../../etc/x`,
          data: Buffer.from('x'),
          longName: 'pax',
        },
      ]),
    );
    await refuseBundle(bundlePath, 'BUNDLE_INVALID', /path traversal \(\.\.\)/);
  });

  it('refuses path traversal hidden in a GNU long name', async () => {
    const bundlePath = await place(
      archiveWith([
        {
          path: `${'b/'.repeat(60)}../../../../../root/.ssh/authorized_keys`,
          data: Buffer.from('x'),
          longName: 'gnu',
        },
      ]),
    );
    await refuseBundle(bundlePath, 'BUNDLE_INVALID', /path traversal \(\.\.\)/);
  });

  it('refuses absolute paths', async () => {
    const bundlePath = await place(
      archiveWith([{ path: '/etc/containers/systemd/evil.container', data: unit }]),
    );
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /"\/etc\/containers\/systemd\/evil\.container": absolute path/,
    );
  });

  it('refuses a symlink pointing outside', async () => {
    const bundlePath = await place(
      archiveWith([{ path: 'quadlet/evil.container', type: '2', linkpath: '/etc/shadow' }]),
    );
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /"quadlet\/evil\.container": symbolic link entries are not allowed/,
    );
  });

  it('refuses a symlink even pointing inside the bundle', async () => {
    const bundlePath = await place(
      archiveWith([{ path: 'quadlet/alias.container', type: '2', linkpath: 'demo.container' }]),
    );
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /"quadlet\/alias\.container": symbolic link entries are not allowed/,
    );
  });

  it('refuses a hardlink pointing outside', async () => {
    const bundlePath = await place(
      archiveWith([{ path: 'env/demo.env', type: '1', linkpath: '/etc/shadow' }]),
    );
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /"env\/demo\.env": hard link entries are not allowed/,
    );
  });

  it('refuses a hardlink even pointing inside the bundle', async () => {
    const bundlePath = await place(
      archiveWith([
        { path: 'quadlet/copy.container', type: '1', linkpath: 'quadlet/demo.container' },
      ]),
    );
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /"quadlet\/copy\.container": hard link entries are not allowed/,
    );
  });

  it('refuses a device entry', async () => {
    const bundlePath = await place(
      archiveWith([
        { path: 'quadlet/sda', type: '4', devmaj: 8, devmin: 0 },
        { path: 'quadlet/mem', type: '3', devmaj: 1, devmin: 1 },
        { path: 'quadlet/fifo', type: '6' },
      ]),
    );
    const message = await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /"quadlet\/sda": block device entries are not allowed/,
    );
    expect(message).toContain('"quadlet/mem": character device entries are not allowed');
    expect(message).toContain('"quadlet/fifo": FIFO entries are not allowed');
  });

  it('refuses a setuid mode (and setgid and sticky)', async () => {
    const bundlePath = await place(
      archiveWith([], [unitFile], { path: unitFile.path, data: unit, mode: 0o4755 }),
    );
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /"quadlet\/demo\.container": mode 4755 has a setuid, setgid or sticky bit/,
    );
    const sgid = await place(
      archiveWith([], [unitFile], { path: unitFile.path, data: unit, mode: 0o2644 }),
    );
    await refuseBundle(sgid, 'BUNDLE_INVALID', /mode 2644 has a setuid, setgid or sticky bit/);
  });

  it('refuses duplicate names (a second manifest.json)', async () => {
    const second = manifestFor([]);
    const bundlePath = await place(archiveWith([{ path: MANIFEST_PATH, data: second }]));
    await refuseBundle(bundlePath, 'BUNDLE_INVALID', /"manifest\.json": duplicate name/);
  });

  it('refuses duplicate names (the same unit twice, second one different)', async () => {
    const bundlePath = await place(
      archiveWith([{ path: unitFile.path, data: Buffer.from('[Container]\nImage=evil\n') }]),
    );
    await refuseBundle(bundlePath, 'BUNDLE_INVALID', /"quadlet\/demo\.container": duplicate name/);
  });

  it('refuses names that collide after case folding', async () => {
    const bundlePath = await place(archiveWith([{ path: 'quadlet/DEMO.container', data: unit }]));
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /"quadlet\/DEMO\.container" and "quadlet\/demo\.container": names collide after Unicode normalisation or case folding/,
    );
  });

  it('refuses names that collide after Unicode NFC normalisation', async () => {
    const nfc = 'quadlet/caf\u00e9.container';
    const nfd = 'quadlet/cafe\u0301.container';
    const bundlePath = await place(
      forgeTgz([
        { path: MANIFEST_PATH, data: manifestFor([unitFile]) },
        { path: unitFile.path, data: unit },
        { path: nfc, data: unit, longName: 'pax' },
        { path: nfd, data: unit, longName: 'pax' },
      ]),
    );
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /names collide after Unicode normalisation or case folding/,
    );
  });

  it('refuses a gzip bomb without inflating it', async () => {
    // 64 MiB of zeros compress about a thousandfold, far past the ratio cap.
    const bomb = gzipSync(
      forgeTar([
        { path: MANIFEST_PATH, data: manifestFor([unitFile]) },
        { path: 'quadlet/zeros.container', data: Buffer.alloc(64 * 1024 * 1024) },
      ]),
      { level: 9 },
    );
    expect(bomb.length).toBeLessThan(256 * 1024);
    const bundlePath = await place(bomb);
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /decompresses to more than 200 times its compressed size; refusing a possible gzip bomb/,
    );
  });

  it('refuses a file not in the manifest', async () => {
    const bundlePath = await place(archiveWith([{ path: 'quadlet/extra.container', data: unit }]));
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /"quadlet\/extra\.container": not listed in the manifest/,
    );
  });

  it('refuses a hash mismatch', async () => {
    // Same size, different bytes: only the hash can tell.
    const sameSize = Buffer.from(unit.toString().replace('demo:1', 'evil:1'));
    const bundlePath = await place(
      archiveWith([], [unitFile], { path: unitFile.path, data: sameSize }),
    );
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /"quadlet\/demo\.container": sha256 [0-9a-f]{64} differs from the manifest's [0-9a-f]{64}/,
    );
  });

  it('refuses a manifest that fails the schema, listing every problem', async () => {
    const broken = manifestFor([unitFile], (m) => ({
      ...m,
      name: 'Bad Name',
      version: 'latest',
      extra: true,
      files: [{ path: '/etc/passwd', kind: 'quadlet', sha256: 'zz', size: -1, mode: 0o4755 }],
    }));
    const bundlePath = await place(
      forgeTgz([
        { path: MANIFEST_PATH, data: broken },
        { path: unitFile.path, data: unit },
      ]),
    );
    const message = await refuseBundle(
      bundlePath,
      'MANIFEST_INVALID',
      /^manifest\.json is invalid: /,
    );
    for (const problem of [
      'name: must be lowercase letters, digits and dashes',
      'version: must be a semantic version such as 1.2.3',
      'files.0.path: must be a relative path without . or ..',
      'files.0.sha256: must be a lowercase hex sha256',
      'files.0.mode: must be a plain permission mode (no setuid, setgid or sticky bit)',
      '(root): Unrecognized key: "extra"',
    ]) {
      expect(message).toContain(problem);
    }
  });

  it('refuses a tmpfiles.d fragment that would link over /etc as root', async () => {
    const { tgz } = buildTestBundle({
      files: [
        { path: 'quadlet/demo.container', content: unit },
        {
          path: 'tmpfiles.d/demo.conf',
          content: 'L+ /etc/sudoers.d/demo - - - - /var/lib/demo/sudoers\n',
        },
      ],
    });
    const bundlePath = await place(tgz);
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /tmpfiles\.d\/demo\.conf:1: line type "L\+" is not allowed \(only d, e, f, z\)/,
    );
  });

  it('refuses a sysusers.d fragment naming a primary group by its number', async () => {
    const { tgz } = buildTestBundle({
      files: [
        { path: 'quadlet/demo.container', content: unit },
        { path: 'sysusers.d/demo.conf', content: 'u demo -\nu evil 990:4001\n' },
      ],
    });
    const bundlePath = await place(tgz);
    await refuseBundle(
      bundlePath,
      'BUNDLE_INVALID',
      /sysusers\.d\/demo\.conf:2: primary group 4001 is a number, which names whatever group holds that GID; name the group/,
    );
  });

  it('refuses a manifest that is not JSON', async () => {
    const bundlePath = await place(
      forgeTgz([
        { path: MANIFEST_PATH, data: Buffer.from('{"name": "demo",') },
        { path: unitFile.path, data: unit },
      ]),
    );
    await refuseBundle(bundlePath, 'MANIFEST_INVALID', /^manifest\.json is not valid UTF-8 JSON/);
  });
});

describe('hostile host state', () => {
  it('refuses a downgrade below the highest version ever installed', () => {
    const decision = decideVersion(
      '1.0.0',
      { installed: '1.1.0', highest: '1.2.0', quarantined: [] },
      { allowDowngrade: false },
    );
    expect(decision).toMatchObject({
      action: 'refuse',
      code: 'VERSION_REFUSED',
      message: 'version 1.0.0 is lower than 1.2.0, the highest ever installed here',
    });
    expect(exitCodeFor('VERSION_REFUSED')).toBe(6);
  });

  async function hostRoot(groups: string): Promise<string> {
    const root = join(work, 'root');
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(join(root, 'etc/group'), groups);
    await writeFile(
      join(root, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\ndemo:x:990:990::/:/usr/sbin/nologin\n',
    );
    before = await snapshotTree(work);
    return root;
  }

  it('refuses an unknown group before anything changes (an infrastructure group must pre-exist)', async () => {
    const root = await hostRoot('root:x:0:\ndemo:x:990:\n');
    const { manifest } = buildTestBundle();
    const error = await asyncRefusal(() =>
      checkRequiredAccounts(manifest, new Map(), fileAccounts(root)),
    );
    expect(error.code).toBe('FACT_MISSING');
    expect(error.message).toBe(
      'missing host facts: group postgres-clients (the bundle uses them but does not create them)',
    );
    const late = await asyncRefusal(() =>
      resolveFacts(manifest, fileAccounts(root), new Map([['db_password', 'x']])),
    );
    expect(late.message).toBe('missing host facts: group postgres-clients');
    await expectTreeUnchanged(work, before);
  });

  it('refuses a missing secret, naming the file it should be in', async () => {
    const root = await hostRoot('root:x:0:\ndemo:x:990:\npostgres-clients:x:117:\n');
    const { manifest } = buildTestBundle();
    const secretsPath = join(root, 'etc/rick/secrets/demo.env');
    await mkdir(join(root, 'etc/rick/secrets'), { recursive: true });
    await writeFile(secretsPath, 'OTHER=1\n', { mode: 0o600 });
    before = await snapshotTree(work);
    const secrets = await readSecretsFile(secretsPath);
    const error = await asyncRefusal(() =>
      resolveFacts(manifest, fileAccounts(root), secrets, { secretsPath }),
    );
    expect(error.code).toBe('FACT_MISSING');
    expect(error.message).toBe(`missing host facts: secret db_password (in ${secretsPath})`);
    await rm(secretsPath);
    before = await snapshotTree(work);
    const absent = await readSecretsFileIfPresent(secretsPath);
    expect(absent).toBeUndefined();
    const missingFile = await asyncRefusal(() =>
      resolveFacts(manifest, fileAccounts(root), absent, { secretsPath }),
    );
    expect(missingFile.message).toBe(
      `missing host facts: secret db_password (in ${secretsPath}, which does not exist)`,
    );
    await expectTreeUnchanged(work, before);
  });

  it('refuses a secrets file readable by others', async () => {
    const secretsPath = join(work, 'demo.env');
    await writeFile(secretsPath, 'db_password=hunter2\n');
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      await chmod(secretsPath, mode);
      before = await snapshotTree(work);
      const error = await asyncRefusal(() => readSecretsFile(secretsPath, { requireOwner: 0 }));
      expect(error.code).toBe('SECRETS_INSECURE');
      expect(error.message).toBe(
        `secrets file ${secretsPath} has mode 0${mode.toString(8)}; it must not be readable or writable by group or others`,
      );
      expect(error.message).not.toContain('hunter2');
      await expectTreeUnchanged(work, before);
    }
  });
});

// ---------------------------------------------------------------------------
// The same hostile inputs end to end: `rick-install <bundle> --root DIR` on a
// host tree that already runs generation 1 (demo 0.9.0). Each case asserts the
// exit code, the stderr message and that the whole host tree is unchanged.

interface CliCase {
  name: string;
  /** Prepares the input (and may alter the host tree before the snapshot); returns the bundle path. */
  setup: (tree: HostTree) => Promise<string>;
  extraArgs?: string[];
  exit: number;
  code: string;
  message: RegExp;
}

async function signedFile(
  tree: HostTree,
  tgz: Buffer,
  sig?: Uint8Array | 'none',
  name = 'demo-1.0.0.tgz',
) {
  const bundlePath = join(tree.work, name);
  await writeFile(bundlePath, tgz);
  if (sig !== 'none')
    await writeFile(`${bundlePath}.sig`, sig ?? (await signDetached(tgz, trusted.privateKey)));
  return bundlePath;
}

const cliCases: CliCase[] = [
  {
    name: 'wrong key',
    setup: async (tree) => {
      await writeFile(join(tree.root, 'etc/rick/keys/release.asc'), untrusted.publicKeyArmored);
      return signedFile(tree, buildTestBundle().tgz);
    },
    exit: ExitCode.untrustedSignature,
    code: 'SIGNATURE_INVALID',
    message: /no valid signature by a trusted key/,
  },
  {
    name: 'a tarball changed by one byte',
    setup: async (tree) => {
      const { tgz } = buildTestBundle();
      const sig = await signDetached(tgz, trusted.privateKey);
      const changed = Buffer.from(tgz);
      changed[100] = (changed[100] ?? 0) ^ 0x80;
      return signedFile(tree, changed, sig);
    },
    exit: ExitCode.untrustedSignature,
    code: 'SIGNATURE_INVALID',
    message: /no valid signature by a trusted key/,
  },
  {
    name: 'a signature by an untrusted key',
    setup: async (tree) => {
      const { tgz } = buildTestBundle();
      return signedFile(tree, tgz, await signDetached(tgz, untrusted.privateKey));
    },
    exit: ExitCode.untrustedSignature,
    code: 'SIGNATURE_INVALID',
    message: /no valid signature by a trusted key/,
  },
  {
    name: 'a missing signature',
    setup: (tree) => signedFile(tree, buildTestBundle().tgz, 'none'),
    exit: ExitCode.untrustedSignature,
    code: 'SIGNATURE_MISSING',
    message: /no signature file .*demo-1\.0\.0\.tgz\.sig/,
  },
  {
    name: 'a garbage signature',
    setup: (tree) => signedFile(tree, buildTestBundle().tgz, Buffer.from('garbage'.repeat(20))),
    exit: ExitCode.untrustedSignature,
    code: 'SIGNATURE_INVALID',
    message: /not an OpenPGP signature/,
  },
  {
    name: 'a text-mode signature',
    setup: async (tree) => {
      const { tgz } = buildTestBundle();
      const sig = await openpgp.sign({
        message: await openpgp.createMessage({ text: tgz.toString('latin1') }),
        signingKeys: trusted.privateKey,
        detached: true,
        format: 'binary',
      });
      return signedFile(tree, tgz, sig as Uint8Array);
    },
    exit: ExitCode.untrustedSignature,
    code: 'SIGNATURE_INVALID',
    message: /signature type 0x01 is not a binary document signature/,
  },
  {
    name: 'path traversal',
    setup: (tree) =>
      signedFile(tree, archiveWith([{ path: 'quadlet/../../../../etc/cron.d/x', data: unit }])),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /"quadlet\/\.\.\/\.\.\/\.\.\/\.\.\/etc\/cron\.d\/x": path traversal \(\.\.\)/,
  },
  {
    name: 'an absolute path',
    setup: (tree) =>
      signedFile(tree, archiveWith([{ path: '/etc/containers/systemd/x.container', data: unit }])),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /"\/etc\/containers\/systemd\/x\.container": absolute path/,
  },
  {
    name: 'a symlink pointing outside',
    setup: (tree) =>
      signedFile(
        tree,
        archiveWith([{ path: 'quadlet/x.container', type: '2', linkpath: '/etc/shadow' }]),
      ),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /"quadlet\/x\.container": symbolic link entries are not allowed/,
  },
  {
    name: 'a symlink pointing inside',
    setup: (tree) =>
      signedFile(
        tree,
        archiveWith([{ path: 'quadlet/x.container', type: '2', linkpath: 'demo.container' }]),
      ),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /"quadlet\/x\.container": symbolic link entries are not allowed/,
  },
  {
    name: 'a hardlink pointing outside',
    setup: (tree) =>
      signedFile(
        tree,
        archiveWith([{ path: 'quadlet/x.container', type: '1', linkpath: '/etc/shadow' }]),
      ),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /"quadlet\/x\.container": hard link entries are not allowed/,
  },
  {
    name: 'a hardlink pointing inside',
    setup: (tree) =>
      signedFile(
        tree,
        archiveWith([
          { path: 'quadlet/x.container', type: '1', linkpath: 'quadlet/demo.container' },
        ]),
      ),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /"quadlet\/x\.container": hard link entries are not allowed/,
  },
  {
    name: 'a device entry',
    setup: (tree) =>
      signedFile(tree, archiveWith([{ path: 'quadlet/sda', type: '4', devmaj: 8, devmin: 0 }])),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /"quadlet\/sda": block device entries are not allowed/,
  },
  {
    name: 'a setuid mode',
    setup: (tree) =>
      signedFile(
        tree,
        archiveWith([], [unitFile], { path: unitFile.path, data: unit, mode: 0o4755 }),
      ),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /mode 4755 has a setuid, setgid or sticky bit/,
  },
  {
    name: 'duplicate names',
    setup: (tree) =>
      signedFile(
        tree,
        archiveWith([{ path: unitFile.path, data: Buffer.from('[Container]\nImage=evil\n') }]),
      ),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /"quadlet\/demo\.container": duplicate name/,
  },
  {
    name: 'a gzip bomb',
    setup: (tree) =>
      signedFile(
        tree,
        gzipSync(
          forgeTar([
            { path: MANIFEST_PATH, data: manifestFor([unitFile]) },
            { path: 'quadlet/zeros.container', data: Buffer.alloc(64 * 1024 * 1024) },
          ]),
          { level: 9 },
        ),
      ),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /refusing a possible gzip bomb/,
  },
  {
    name: 'a file not in the manifest',
    setup: (tree) =>
      signedFile(tree, archiveWith([{ path: 'quadlet/extra.container', data: unit }])),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /"quadlet\/extra\.container": not listed in the manifest/,
  },
  {
    name: 'a hash mismatch',
    setup: (tree) =>
      signedFile(
        tree,
        archiveWith([], [unitFile], {
          path: unitFile.path,
          data: Buffer.from(unit.toString().replace('demo:1', 'evil:1')),
        }),
      ),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /"quadlet\/demo\.container": sha256 [0-9a-f]{64} differs from the manifest's/,
  },
  {
    name: 'a manifest that fails the schema',
    setup: (tree) =>
      signedFile(
        tree,
        forgeTgz([
          {
            path: MANIFEST_PATH,
            data: manifestFor([unitFile], (m) => ({ ...m, version: 'latest', schemaVersion: 3 })),
          },
          { path: unitFile.path, data: unit },
        ]),
      ),
    exit: ExitCode.invalidBundle,
    code: 'MANIFEST_INVALID',
    message:
      /manifest\.json is invalid: schemaVersion: .*; version: must be a semantic version such as 1\.2\.3/,
  },
  {
    name: 'a tmpfiles.d fragment reaching outside the service state',
    setup: (tree) =>
      signedFile(
        tree,
        buildTestBundle({
          files: [
            ...sampleFiles(),
            {
              path: 'tmpfiles.d/demo.conf',
              content: 'L+ /etc/cron.d/demo - - - - /var/lib/demo/cron\n',
            },
          ],
        }).tgz,
      ),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /tmpfiles\.d\/demo\.conf:1: line type "L\+" is not allowed/,
  },
  {
    name: 'a malformed placeholder, before systemd-sysusers touches the host',
    setup: (tree) =>
      signedFile(
        tree,
        buildTestBundle({
          files: [
            ...sampleFiles().map((f) =>
              f.path === 'quadlet/demo.pod'
                ? { ...f, content: `${f.content}# @@rick:gid:broken\n` }
                : f,
            ),
          ],
        }).tgz,
      ),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: /quadlet\/demo\.pod: malformed token @@rick:gid:broken \(unterminated token\)/,
  },
  ...(
    [
      ['a Quadlet unit', 'quadlet/demo.pod', []],
      [
        'a plain unit',
        'systemd/demo-app.timer',
        // A timer runs no command itself: no grant is needed to reach the substitution.
        [
          {
            path: 'systemd/demo-app.timer',
            content: '[Timer]\nOnCalendar=daily\nUnit=demo-app.service\n',
          },
        ],
      ],
      [
        'a Caddy site',
        'caddy/demo.caddy',
        [
          {
            path: 'caddy/demo.caddy',
            content: 'demo.example.org {\n\treverse_proxy 127.0.0.1:9000\n}\n',
          },
        ],
      ],
      [
        'the installer',
        'installer/rick-install.cjs',
        [{ path: 'installer/rick-install.cjs', content: '// installer\n' }],
      ],
    ] as const
  ).map(([what, target, extra]) => ({
    // The token would resolve to generations/<n>/bundles/demo/<target>, which the host never writes.
    name: `bundle_path() of ${what}, a file that would not exist where it points`,
    setup: (tree: HostTree) =>
      signedFile(
        tree,
        buildTestBundle({
          files: [
            ...sampleFiles().map((f) =>
              f.path === 'quadlet/demo-app.container'
                ? {
                    ...f,
                    content: `${f.content}# also\n[Container]\nVolume=@@rick:path:${target}@@:/mnt/file:ro\n`,
                  }
                : f,
            ),
            ...extra,
          ],
        }).tgz,
      ),
    exit: ExitCode.invalidBundle,
    code: 'BUNDLE_INVALID',
    message: new RegExp(
      `quadlet/demo-app\\.container: @@rick:path:${target.replace(/[.]/g, '\\.')}@@ names ${what}, which the host writes to generations/<n>/`,
    ),
  })),
  {
    name: 'a downgrade',
    setup: (tree) =>
      signedFile(tree, buildTestBundle({ version: '0.8.0' }).tgz, undefined, 'demo-0.8.0.tgz'),
    exit: ExitCode.versionPolicy,
    code: 'VERSION_REFUSED',
    message: /version 0\.8\.0 is lower than 0\.9\.0, the highest ever installed here/,
  },
  {
    name: 'a missing infrastructure group',
    setup: async (tree) => {
      const { tgz } = buildTestBundle({
        files: sampleFiles().map((f) =>
          f.path === 'quadlet/demo-app.container'
            ? {
                ...f,
                content: `${f.content}# also\n[Container]\nEnvironment=G=@@rick:gid:valkey-clients@@\n`,
              }
            : f,
        ),
      });
      const group = join(tree.root, 'etc/group');
      const lines = (await readFile(group, 'utf8')).split('\n');
      await writeFile(group, lines.filter((l) => !l.startsWith('valkey-clients:')).join('\n'));
      return signedFile(tree, tgz);
    },
    exit: ExitCode.missingPrerequisite,
    code: 'FACT_MISSING',
    message: /missing host facts: group valkey-clients/,
  },
  {
    name: 'a missing secret',
    setup: async (tree) => {
      await writeFile(join(tree.root, 'etc/rick/secrets/demo.env'), 'unrelated=1\n', {
        mode: 0o600,
      });
      return signedFile(tree, buildTestBundle().tgz);
    },
    exit: ExitCode.missingPrerequisite,
    code: 'FACT_MISSING',
    message: /missing host facts: secret db_password \(in .*etc\/rick\/secrets\/demo\.env\)/,
  },
  {
    name: 'a secrets file readable by others',
    setup: async (tree) => {
      await chmod(join(tree.root, 'etc/rick/secrets/demo.env'), 0o644);
      return signedFile(tree, buildTestBundle().tgz);
    },
    exit: ExitCode.missingPrerequisite,
    code: 'SECRETS_INSECURE',
    message:
      /secrets file .*etc\/rick\/secrets\/demo\.env has mode 0644; it must not be readable or writable by group or others/,
  },
];

describe('hostile inputs end to end: rick-install --root', () => {
  let tree: HostTree;
  afterEach(async () => {
    await tree?.cleanup();
  });

  for (const command of ['install', 'plan'] as const) {
    for (const c of cliCases) {
      it(`${command} refuses ${c.name}: exit ${c.exit}, ${c.code}, host tree unchanged`, async () => {
        tree = await makeHostTree(trusted);
        const host = new FakeHost({ root: tree.root });
        const v0 = await writeSignedBundle(tree.work, trusted, { version: '0.9.0' });
        const first = await runInstaller(host, [v0.bundlePath, '--root', tree.root]);
        expect(first.stderr).toBe('');
        expect(first.code).toBe(ExitCode.ok);
        const bundlePath = await c.setup(tree);
        const snapshot = await snapshotTree(tree.root);
        host.reset();
        const argv = [
          ...(command === 'plan' ? ['plan'] : []),
          bundlePath,
          '--root',
          tree.root,
          ...(c.extraArgs ?? []),
        ];
        const r = await runInstaller(host, argv);
        expect(r.stderr).toMatch(new RegExp(`^error ${c.code}: `));
        expect(r.stderr.split('\n')[0]).toMatch(c.message);
        expect(r.code).toBe(c.exit);
        expect(exitCodeFor(c.code as Parameters<typeof exitCodeFor>[0])).toBe(c.exit);
        expect(host.calls).toEqual([]);
        await expectTreeUnchanged(tree.root, snapshot);
      });
    }
  }
});

describe('a quarantined version end to end', () => {
  let tree: HostTree;
  afterEach(async () => {
    await tree?.cleanup();
  });

  it('refuses to reinstall a version that failed its health gate, even with --allow-downgrade', async () => {
    tree = await makeHostTree(trusted);
    const host = new FakeHost({ root: tree.root });
    const v0 = await writeSignedBundle(tree.work, trusted, { version: '0.9.0' });
    expect((await runInstaller(host, [v0.bundlePath, '--root', tree.root])).code).toBe(ExitCode.ok);
    const v1 = await writeSignedBundle(tree.work, trusted, {
      version: '1.0.0',
      files: sampleFiles('demo', 'v1-broken'),
    });
    host.failUnit('demo-app.service', 2);
    const broken = await runInstaller(host, [v1.bundlePath, '--root', tree.root]);
    expect(broken.code).toBe(ExitCode.rolledBack);
    const snapshot = await snapshotTree(tree.root);
    for (const extra of [[], ['--allow-downgrade']]) {
      host.reset();
      const again = await runInstaller(host, [v1.bundlePath, '--root', tree.root, ...extra]);
      expect(again.stderr.split('\n')[0]).toBe(
        'error VERSION_QUARANTINED: version 1.0.0 is quarantined: it failed its health gate on this host and was rolled back',
      );
      expect(again.code).toBe(ExitCode.versionPolicy);
      expect(host.calls).toEqual([]);
      await expectTreeUnchanged(tree.root, snapshot);
    }
  });
});
