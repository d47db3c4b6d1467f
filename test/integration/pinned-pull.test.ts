/**
 * A bundle whose units name their image by digest (rick-bundle build with
 * images.lock): the host pulls that digest before the flip, and a digest the
 * registry does not have refuses the install there, with podman's own
 * message, nothing changed. `plan` shows a moved digest as its own line.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BUILD_RECORD_PATH,
  planBuildRecord,
  serializeBuildRecord,
} from '../../src/bundle/build-record.js';
import { ExitCode } from '../../src/errors.js';
import {
  type FactoryFile,
  makeTestKey,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import {
  DEMO_GRANT,
  type HostTree,
  liveGeneration,
  makeHostTree,
  runInstaller,
} from '../helpers/host-tree.js';
import { quadletPath, requireQuadletUnderCi } from '../helpers/quadlet.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let tree: HostTree;
beforeAll(async () => {
  requireQuadletUnderCi();
  key = await makeTestKey();
});
beforeEach(async () => {
  tree = await makeHostTree(key, { grants: { demo: `${DEMO_GRANT}USERS=root\n` } });
});
afterEach(async () => {
  await tree?.cleanup();
});

const IMAGE = 'registry.example.org/demo:1.2';
const first = `sha256:${'1'.repeat(64)}`;
const moved = `sha256:${'2'.repeat(64)}`;
const SERVICE = 'demo.service';

/**
 * What `podman pull` prints for a digest its registry lacks: podman (libimage)
 * drops the tag of a tagged and digested reference, and containers/image
 * reports the registry's MANIFEST_UNKNOWN (docker/docker_client.go:
 * "reading manifest %s in %s: %w").
 */
const missingDigestError = (digest: string) =>
  `initializing source docker://registry.example.org/demo@${digest}: reading manifest ${digest} in registry.example.org/demo: manifest unknown`;

function unit(digest: string): FactoryFile {
  return {
    path: 'quadlet/demo.container',
    content: `[Container]\nImage=${IMAGE}@${digest}\nExec=serve\n\n[Install]\nWantedBy=multi-user.target\n`,
  };
}

/** As rick-bundle build writes it: the pinned image in the build record, which hosts ignore. */
function buildRecord(digest: string): FactoryFile {
  return {
    path: BUILD_RECORD_PATH,
    kind: 'installer',
    mode: 0o644,
    content: serializeBuildRecord(
      planBuildRecord({ node: '24.21.0', rick: '1.0.0', esbuild: null }, [
        { reference: IMAGE, digest },
      ]),
    ),
  };
}

async function bundle(version: string, digest: string) {
  return writeSignedBundle(tree.work, key, {
    version,
    files: [unit(digest), buildRecord(digest)],
  });
}

async function installedHost(): Promise<FakeHost> {
  const host = new FakeHost({ root: tree.root });
  const b = await bundle('1.0.0', first);
  const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(host.pulls()).toEqual([`${IMAGE}@${first}`]);
  host.reset();
  return host;
}

describe.skipIf(!quadletPath)('images pinned by digest on the host', () => {
  it('plan shows the moved digest as its own line', async () => {
    const host = await installedHost();
    const b = await bundle('1.1.0', moved);
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, ['plan', b.bundlePath, '--root', tree.root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`image   ${IMAGE} sha256:111111111111… → sha256:222222222222…\n`);
    expect(r.stdout).toContain(`pull    ${IMAGE}@${moved} (Pull=missing; for ${SERVICE})`);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    const json = await runInstaller(host, ['plan', b.bundlePath, '--root', tree.root, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).changes.imageDigests).toEqual([
      { reference: IMAGE, before: first, after: moved },
    ]);
  });

  it('a digest the registry does not have fails in the pull before the flip: exit 12, nothing changed', async () => {
    const host = await installedHost();
    host.failingImages.set(`${IMAGE}@${moved}`, missingDigestError(moved));
    const servingBefore = Object.fromEntries(host.active);
    const before = await snapshotTree(tree.root);
    const b = await bundle('1.1.0', moved);
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.imagePull);
    expect(r.stderr).toContain(
      `error IMAGE_PULL_FAILED: cannot pull image ${IMAGE}@${moved}: ${missingDigestError(moved)}`,
    );
    expect(host.pulls()).toEqual([`${IMAGE}@${moved}`]);
    expect(host.serviceCalls()).toEqual([]);
    expect(Object.fromEntries(host.active)).toEqual(servingBefore);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    expect(await liveGeneration(tree.root)).toBe('generations/1');
  });
});
