/**
 * `rick-bundle build` with images.lock: locked images rendered by digest and
 * recorded in the build record the signed manifest lists, never in the
 * manifest itself (podman's real quadlet generator checks
 * the units), unlocked ones left as written, `--require-pinned`, and a lock
 * entry the units no longer use.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseBundleArchive } from '../../src/bundle/archive.js';
import { BUILD_RECORD_PATH, parseBuildRecord } from '../../src/bundle/build-record.js';
import { quadletPath, requireQuadletUnderCi } from '../helpers/quadlet.js';
import {
  makeTempDir,
  runBundleCli,
  writeBundleDir,
  writeTestInstaller,
} from '../helpers/rick-bundle.js';
import { expectTreeUnchanged, snapshotTree } from '../helpers/tree-snapshot.js';

requireQuadletUnderCi();

let work: string;
let out: string;
let installer: string;
beforeEach(async () => {
  work = await makeTempDir('rick-build-pinned-');
  out = join(work, 'out');
  installer = await writeTestInstaller(work);
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const app = 'ghcr.io/example/app:1.2';
const tool = 'docker.io/library/redis:7';
const appDigest = `sha256:${'a'.repeat(64)}`;
const toolDigest = `sha256:${'b'.repeat(64)}`;

function lock(images: Record<string, string>): string {
  return `${JSON.stringify({ schemaVersion: 1, images }, null, 2)}\n`;
}

async function bundle(files: Record<string, string> = {}): Promise<string> {
  return writeBundleDir(join(work, 'demo'), {
    'bundle.yaml': `name: demo
needs: { users: [root] }
variables:
  app: ${app}
files:
  quadlet: [quadlet/demo.container.j2, quadlet/tool.image.j2, quadlet/side.container.j2]
`,
    'quadlet/demo.container.j2':
      '[Container]\nImage={{ app }}\n\n[Install]\nWantedBy=multi-user.target\n',
    'quadlet/tool.image.j2': `[Image]\nImage=${tool}\n`,
    // Names the .image unit: quadlet resolves it, there is nothing to pin.
    'quadlet/side.container.j2': '[Container]\nImage=tool.image\n',
    ...files,
  });
}

function build(dir: string, ...extra: string[]) {
  return runBundleCli([
    'build',
    dir,
    '--version',
    '1.0.0',
    '--out',
    out,
    '--installer',
    installer,
    ...extra,
  ]);
}

async function builtBundle() {
  const contents = parseBundleArchive(await readFile(join(out, 'demo-1.0.0.tgz')));
  const record = contents.files.get(BUILD_RECORD_PATH);
  if (!record) throw new Error(`the bundle carries no ${BUILD_RECORD_PATH}`);
  const parsed = parseBuildRecord(record);
  if (!parsed.ok) throw new Error(`${BUILD_RECORD_PATH}: ${parsed.problem}`);
  // Never a field of the manifest: installers on hosts refuse fields they do not know.
  expect(JSON.parse(contents.manifestBytes.toString('utf8'))).not.toHaveProperty('images');
  return { ...contents, record: parsed.record };
}

const unitText = (files: ReadonlyMap<string, Buffer>, path: string) =>
  files.get(path)?.toString('utf8');

describe.skipIf(!quadletPath)('rick-bundle build with images.lock', () => {
  it('renders each locked image as reference@digest, which quadlet accepts, and records it in the build record', async () => {
    const dir = await bundle({ 'images.lock': lock({ [app]: appDigest, [tool]: toolDigest }) });
    const result = await build(dir, '--require-pinned');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const { record, files } = await builtBundle();
    expect(unitText(files, 'quadlet/demo.container')).toContain(`Image=${app}@${appDigest}\n`);
    expect(unitText(files, 'quadlet/tool.image')).toContain(`Image=${tool}@${toolDigest}\n`);
    expect(unitText(files, 'quadlet/side.container')).toContain('Image=tool.image\n');
    expect(record.images).toEqual([
      { reference: tool, digest: toolDigest },
      { reference: app, digest: appDigest },
    ]);
    expect(result.stdout).toContain(`images pinned: ${tool}@${toolDigest}, ${app}@${appDigest}`);
  });

  it('without a lock, images stay as written and the build record has no images', async () => {
    const dir = await bundle();
    const result = await build(dir);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const { record, files } = await builtBundle();
    expect(unitText(files, 'quadlet/demo.container')).toContain(`Image=${app}\n`);
    expect(record).not.toHaveProperty('images');
    expect(JSON.parse(unitText(files, BUILD_RECORD_PATH) ?? '')).not.toHaveProperty('images');
  });

  it('--require-pinned without a lock: exit 3 naming every image, no output, the bundle untouched', async () => {
    const dir = await bundle();
    const before = await snapshotTree(dir);
    const result = await build(dir, '--require-pinned');
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(
      `error IMAGES_UNPINNED: no images.lock in ${dir}, so no digest for demo.container: ${app}, tool.image: ${tool}`,
    );
    expect(result.stderr).toContain(`rick-bundle pin ${dir}`);
    await expect(readdir(out)).rejects.toMatchObject({ code: 'ENOENT' });
    await expectTreeUnchanged(dir, before);
  });

  it('--require-pinned with a lock that misses one image names that one only', async () => {
    const dir = await bundle({ 'images.lock': lock({ [app]: appDigest }) });
    const result = await build(dir, '--require-pinned');
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      new RegExp(
        `error IMAGES_UNPINNED: .*images\\.lock has no digest for tool\\.image: ${tool.replaceAll('.', '\\.')}\\n`,
      ),
    );
    expect(result.stderr).not.toContain(`demo.container: ${app}`);
    await expect(readdir(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('without --require-pinned, a partial lock builds and warns about the image it misses', async () => {
    const dir = await bundle({ 'images.lock': lock({ [app]: appDigest }) });
    const result = await build(dir);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(`warning: tool.image: ${tool} has no digest in images.lock\n`);
    const { record } = await builtBundle();
    expect(record.images).toEqual([{ reference: app, digest: appDigest }]);
  });

  it('warns about a lock entry for an image the bundle no longer uses', async () => {
    const gone = 'ghcr.io/example/retired:0.9';
    const dir = await bundle({
      'images.lock': lock({ [app]: appDigest, [gone]: appDigest, [tool]: toolDigest }),
    });
    const result = await build(dir, '--require-pinned');
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      `warning: images.lock pins ${gone}, which no unit uses any more (run \`rick-bundle pin\` to drop it)\n`,
    );
    const { record } = await builtBundle();
    expect(record.images?.map((i) => i.reference)).toEqual([tool, app]);
  });

  it('refuses a malformed images.lock with every problem, and writes nothing', async () => {
    const dir = await bundle({
      'images.lock': `${JSON.stringify({ schemaVersion: 2, images: { [app]: 'sha512:00' } })}\n`,
    });
    const result = await build(dir);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`error IMAGES_LOCK_INVALID: ${join(dir, 'images.lock')}: `);
    expect(result.stderr).toContain('schemaVersion: Invalid input: expected 1');
    expect(result.stderr).toContain(`images.${app}: must be sha256:<64 lowercase hex digits>`);
    await expect(readdir(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
