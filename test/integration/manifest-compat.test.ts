/**
 * The compatibility rule of manifest.json (src/bundle/manifest.ts): every
 * installer already on hosts validates the manifest strictly and refuses a
 * top-level field it does not know. Each host's update timer verifies and
 * installs the next release with the installer of the live generation, so
 * one new field in what rick-bundle writes makes every host refuse every
 * later release: the fleet could never update itself again. Records hosts
 * do not need (the toolchain, the pinned images) go into the build record,
 * installer/build-record.json, which the manifest lists and signs and hosts
 * ignore.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packTarGz } from '../../src/build/tar-pack.js';
import { type BundleContents, parseBundleArchive } from '../../src/bundle/archive.js';
import { BUILD_RECORD_PATH, parseBuildRecord } from '../../src/bundle/build-record.js';
import { manifestSchema } from '../../src/bundle/manifest.js';
import { signDetached } from '../../src/bundle/openpgp.js';
import { ExitCode } from '../../src/errors.js';
import { makeTestKey } from '../helpers/bundle-factory.js';
import { refusal } from '../helpers/hostile-tar.js';
import { quadletPath, requireQuadletUnderCi } from '../helpers/quadlet.js';
import {
  makeTempDir,
  runBundleCli,
  writeBundleDir,
  writeTestInstaller,
} from '../helpers/rick-bundle.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

requireQuadletUnderCi();

/**
 * The top-level fields of the manifest schema of the released installers,
 * taken from git history (src/bundle/manifest.ts at commit cc7a699). Those
 * installers are on hosts now and refuse any other field, so a bundle built
 * today may use these and no others. This list changes only when every host
 * runs an installer that knows the new field, or when older installers must
 * refuse the bundle (a field they cannot install right without, as
 * `databases` was).
 */
const RELEASED_MANIFEST_FIELDS = [
  'schemaVersion',
  'name',
  'version',
  'createdAt',
  'source',
  'requires',
  'files',
  'facts',
  'services',
  'needs',
  'databases',
] as const;

const app = 'ghcr.io/example/app:1.2';
const tool = 'docker.io/library/redis:7';
const appDigest = `sha256:${'a'.repeat(64)}`;
const toolDigest = `sha256:${'b'.repeat(64)}`;

let work: string;
let tgz: Buffer;
let contents: BundleContents;

beforeAll(async () => {
  if (!quadletPath) return;
  work = await makeTempDir('rick-manifest-compat-');
  const installer = await writeTestInstaller(work);
  const dir = await writeBundleDir(join(work, 'demo'), {
    'bundle.yaml': `name: demo
needs: { users: [root] }
files:
  quadlet: [quadlet/demo.container.j2, quadlet/tool.image.j2]
`,
    'quadlet/demo.container.j2': `[Container]\nImage=${app}\n\n[Install]\nWantedBy=multi-user.target\n`,
    'quadlet/tool.image.j2': `[Image]\nImage=${tool}\n`,
    'images.lock': `${JSON.stringify({ schemaVersion: 1, images: { [app]: appDigest, [tool]: toolDigest } }, null, 2)}\n`,
  });
  const out = join(work, 'out');
  const built = await runBundleCli(
    [
      'build',
      dir,
      '--version',
      '1.0.0',
      '--out',
      out,
      '--installer',
      installer,
      '--require-pinned',
    ],
    { env: { PATH: process.env.PATH, SOURCE_DATE_EPOCH: '1700000000' } },
  );
  expect(built.stderr).toBe('');
  expect(built.code).toBe(0);
  tgz = await readFile(join(out, 'demo-1.0.0.tgz'));
  contents = parseBundleArchive(tgz);
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** The bundle with the build record's bytes replaced, every other entry as built. */
function withRecord(record: Buffer): Buffer {
  const modes = new Map(contents.manifest.files.map((f) => [f.path, f.mode]));
  return packTarGz(
    [
      { path: 'manifest.json', data: contents.manifestBytes, mode: 0o644 },
      ...[...contents.files].map(([path, data]) => ({
        path,
        data: path === BUILD_RECORD_PATH ? record : data,
        mode: modes.get(path) ?? 0o644,
      })),
    ],
    { mtime: 1700000000 },
  );
}

describe.skipIf(!quadletPath)('a bundle built now, with images pinned and its toolchain', () => {
  it("has only top-level manifest fields the released installers know, so hosts' update timers take it", () => {
    const written = Object.keys(JSON.parse(contents.manifestBytes.toString('utf8')));
    expect(
      written.filter((k) => !(RELEASED_MANIFEST_FIELDS as readonly string[]).includes(k)),
    ).toEqual([]);
    expect(written).toContain('files');
  });

  it('is read by a manifest schema of exactly the released fields (a new field must face this list)', () => {
    expect(Object.keys(manifestSchema.shape)).toEqual([...RELEASED_MANIFEST_FIELDS]);
  });

  it('carries its toolchain and pinned images in the build record, listed as an installer file', () => {
    const listed = contents.manifest.files.find((f) => f.path === BUILD_RECORD_PATH);
    expect(listed?.kind).toBe('installer');
    expect(listed?.mode).toBe(0o644);
    const record = contents.files.get(BUILD_RECORD_PATH);
    expect(record).toBeDefined();
    const parsed = parseBuildRecord(record ?? Buffer.alloc(0));
    expect(parsed.ok && parsed.record.images).toEqual([
      { reference: tool, digest: toolDigest },
      { reference: app, digest: appDigest },
    ]);
    expect(parsed.ok && parsed.record.toolchain.node).toBe(process.versions.node);
  });

  it('refuses a tampered build record as a hash mismatch against the manifest', () => {
    const record = contents.files.get(BUILD_RECORD_PATH) ?? Buffer.alloc(0);
    // Same length, one digest moved: only the sha256 tells.
    const tampered = Buffer.from(
      record.toString('utf8').replace(appDigest, `sha256:${'c'.repeat(64)}`),
    );
    expect(tampered.length).toBe(record.length);
    expect(tampered.equals(record)).toBe(false);
    const error = refusal(() => parseBundleArchive(withRecord(tampered)));
    expect(error.code).toBe('BUNDLE_INVALID');
    expect(error.message).toContain(
      `"${BUILD_RECORD_PATH}": sha256 ${sha256(tampered)} differs from the manifest's ${contents.manifest.files.find((f) => f.path === BUILD_RECORD_PATH)?.sha256}`,
    );
    // The untouched bytes, repacked the same way, are accepted: the record alone was the cause.
    expect(parseBundleArchive(withRecord(record)).manifest.name).toBe('demo');
  });

  it('rick-bundle verify shows the record, and refuses a tampered one even when the bundle is signed again', async () => {
    const key = await makeTestKey('rick release');
    const pub = join(work, 'release.asc');
    await writeFile(pub, key.publicKeyArmored);
    const good = join(work, 'good', 'demo-1.0.0.tgz');
    await mkdir(join(work, 'good'));
    await writeFile(good, tgz);
    await writeFile(`${good}.sig`, await signDetached(tgz, key.privateKey));
    const ok = await runBundleCli(['verify', good, '--keyring', pub], {
      env: { PATH: process.env.PATH },
    });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(ExitCode.ok);
    expect(ok.stdout).toContain(`images pinned: ${tool}@${toolDigest}, ${app}@${appDigest}`);
    expect(ok.stdout).toContain(`built with Node.js ${process.versions.node}, rick `);

    const record = contents.files.get(BUILD_RECORD_PATH) ?? Buffer.alloc(0);
    const forged = withRecord(
      Buffer.from(record.toString('utf8').replace(appDigest, `sha256:${'c'.repeat(64)}`)),
    );
    const bad = join(work, 'bad', 'demo-1.0.0.tgz');
    await mkdir(join(work, 'bad'));
    await writeFile(bad, forged);
    await writeFile(`${bad}.sig`, await signDetached(forged, key.privateKey));
    const before = await snapshotTree(work);
    const refused = await runBundleCli(['verify', bad, '--keyring', pub], {
      env: { PATH: process.env.PATH },
    });
    expect(diffTrees(before, await snapshotTree(work))).toEqual([]);
    expect(refused.code).toBe(ExitCode.invalidBundle);
    expect(refused.stderr).toContain(`"${BUILD_RECORD_PATH}": sha256 `);
    expect(refused.stderr).toContain("differs from the manifest's");
    expect(refused.stdout).toBe('');
  });
});

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
