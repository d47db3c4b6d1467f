/**
 * `rick-bundle pin` against a real registry (Debian's docker-registry, the
 * distribution registry) on a loopback port: images pushed by skopeo, the
 * digests it names, the token flow, and the refusals, each leaving the
 * bundle directory (and its old images.lock) as it was.
 */
import { spawnSync } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRegistry, startRegistryProxy, type TestRegistry } from '../helpers/registry.js';
import { makeTempDir, runBundleCli, writeBundleDir } from '../helpers/rick-bundle.js';
import { expectTreeUnchanged, snapshotTree } from '../helpers/tree-snapshot.js';

const haveTools =
  spawnSync('docker-registry', ['--version']).status === 0 &&
  spawnSync('skopeo', ['--version']).status === 0;

let work: string;
beforeEach(async () => {
  work = await makeTempDir('rick-pin-');
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A bundle of a container and an `.image` unit, their images from variables. */
async function bundle(app: string, tool: string): Promise<string> {
  return writeBundleDir(join(work, 'demo'), {
    'bundle.yaml': `name: demo
needs: { users: [root] }
variables:
  app: "${app}"
  tool: "${tool}"
files:
  quadlet: [quadlet/demo.container.j2, quadlet/tool.image.j2]
`,
    'quadlet/demo.container.j2':
      '[Container]\nImage={{ app }}\n\n[Install]\nWantedBy=multi-user.target\n',
    'quadlet/tool.image.j2': '[Image]\nImage = {{ tool }}\n',
  });
}

function lockText(images: Record<string, string>): string {
  const sorted = Object.fromEntries(Object.entries(images).sort(([a], [b]) => (a < b ? -1 : 1)));
  return `${JSON.stringify({ schemaVersion: 1, images: sorted }, null, 2)}\n`;
}

const oldLock = lockText({ 'example.org/old:1': `sha256:${'0'.repeat(64)}` });

/** Runs pin where it must fail: the bundle directory, old lock included, is left as it was. */
async function pinRefused(dir: string): Promise<{ code: number; stderr: string }> {
  await writeFile(join(dir, 'images.lock'), oldLock);
  const before = await snapshotTree(dir);
  const result = await runBundleCli(['pin', dir]);
  await expectTreeUnchanged(dir, before);
  expect(await readFile(join(dir, 'images.lock'), 'utf8')).toBe(oldLock);
  expect(result.stdout).toBe('');
  return result;
}

describe.skipIf(!haveTools)('rick-bundle pin: a registry without auth', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('writes the digest of an OCI index and of a single manifest, sorted, with a final newline', async () => {
    const index = await registry.push('demo/app:1.0', { seed: 'app 1', index: true });
    const single = await registry.push('demo/tool:2', { seed: 'tool 2' });
    expect(index).not.toBe(single);
    const app = `${registry.host}/demo/app:1.0`;
    const tool = `${registry.host}/demo/tool:2`;
    const dir = await bundle(app, tool);
    const result = await runBundleCli(['pin', dir]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const text = await readFile(join(dir, 'images.lock'), 'utf8');
    expect(text).toBe(lockText({ [app]: index, [tool]: single }));
    expect(Object.keys(JSON.parse(text).images)).toEqual([app, tool].sort());
    expect(result.stdout).toContain(`${app} ${index} (new)`);
    expect(result.stdout).toContain(`${tool} ${single} (new)`);
  });

  it('a moved tag: pinning again writes the new digest and says what moved', async () => {
    const first = await registry.push('demo/moving:1', { seed: 'first', index: true });
    const tool = await registry.push('demo/still:1', { seed: 'still' });
    const app = `${registry.host}/demo/moving:1`;
    const dir = await bundle(app, `${registry.host}/demo/still:1`);
    expect((await runBundleCli(['pin', dir])).code).toBe(0);
    expect(JSON.parse(await readFile(join(dir, 'images.lock'), 'utf8')).images[app]).toBe(first);

    const second = await registry.push('demo/moving:1', { seed: 'second', index: true });
    expect(second).not.toBe(first);
    const again = await runBundleCli(['pin', dir]);
    expect(again.code).toBe(0);
    expect(await readFile(join(dir, 'images.lock'), 'utf8')).toBe(
      lockText({ [app]: second, [`${registry.host}/demo/still:1`]: tool }),
    );
    expect(again.stdout).toContain(`${app} ${first} → ${second}`);
    expect(again.stdout).toContain(`${registry.host}/demo/still:1 ${tool} (unchanged)`);
  });

  it('renders with --vars as build does: the lock holds the references the vars give', async () => {
    await registry.push('demo/app:1.0', { seed: 'app 1' });
    const prod = await registry.push('demo/app:2.0', { seed: 'app 2' });
    const dir = await bundle(`${registry.host}/demo/app:1.0`, `${registry.host}/demo/app:1.0`);
    const vars = join(work, 'prod.yaml');
    await writeFile(
      vars,
      `app: "${registry.host}/demo/app:2.0"\ntool: "${registry.host}/demo/app:2.0"\n`,
    );
    const result = await runBundleCli(['pin', dir, '--vars', vars]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await readFile(join(dir, 'images.lock'), 'utf8')).toBe(
      lockText({ [`${registry.host}/demo/app:2.0`]: prod }),
    );
  });

  it('drops the entries of images the units no longer name', async () => {
    const digest = await registry.push('demo/kept:1', { seed: 'kept' });
    const dir = await bundle(`${registry.host}/demo/kept:1`, `${registry.host}/demo/kept:1`);
    await writeFile(join(dir, 'images.lock'), oldLock);
    const result = await runBundleCli(['pin', dir]);
    expect(result.code).toBe(0);
    expect(await readFile(join(dir, 'images.lock'), 'utf8')).toBe(
      lockText({ [`${registry.host}/demo/kept:1`]: digest }),
    );
    expect(result.stdout).toContain('example.org/old:1 dropped (no unit uses it)');
  });

  it('a missing tag: IMAGE_NOT_FOUND naming the image and the 404, the old lock kept', async () => {
    await registry.push('demo/app:1.0', { seed: 'app 1' });
    const dir = await bundle(`${registry.host}/demo/app:1.0`, `${registry.host}/demo/app:9.9`);
    const result = await pinRefused(dir);
    expect(result.code).toBe(12);
    expect(result.stderr).toContain(
      `error IMAGE_NOT_FOUND: image ${registry.host}/demo/app:9.9 (registry ${registry.host}): the registry has no tag 9.9 of demo/app (404 Not Found)`,
    );
  });

  it('a reference that already carries a digest is refused before the registry is asked', async () => {
    const digest = await registry.push('demo/app:1.0', { seed: 'app 1' });
    const dir = await bundle(
      `${registry.host}/demo/app:1.0@${digest}`,
      `${registry.host}/demo/app:1.0`,
    );
    const result = await pinRefused(dir);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(
      `error IMAGE_REFERENCE_INVALID: image ${registry.host}/demo/app:1.0@${digest}: already carries a digest`,
    );
  });

  it('a registry answering 500: REGISTRY_ERROR with its status, the old lock kept', async () => {
    await registry.push('demo/app:1.0', { seed: 'app 1' });
    const proxy = await startRegistryProxy(registry.host, { status500: true });
    try {
      const dir = await bundle(`${proxy.host}/demo/app:1.0`, `${proxy.host}/demo/app:1.0`);
      const result = await pinRefused(dir);
      expect(result.code).toBe(12);
      expect(result.stderr).toContain(
        `error REGISTRY_ERROR: image ${proxy.host}/demo/app:1.0 (registry ${proxy.host}): the registry answered 500 Internal Server Error`,
      );
    } finally {
      await proxy.stop();
    }
  });

  it('a digest other than sha256 is refused, the old lock kept', async () => {
    await registry.push('demo/app:1.0', { seed: 'app 1' });
    const proxy = await startRegistryProxy(registry.host, { digest: `sha512:${'ab'.repeat(64)}` });
    try {
      const dir = await bundle(`${proxy.host}/demo/app:1.0`, `${proxy.host}/demo/app:1.0`);
      const result = await pinRefused(dir);
      expect(result.code).toBe(12);
      expect(result.stderr).toContain(
        `error REGISTRY_ERROR: image ${proxy.host}/demo/app:1.0 (registry ${proxy.host}): the registry gave the digest "sha512:abab`,
      );
      expect(result.stderr).toContain('not sha256:<64 hex digits>');
    } finally {
      await proxy.stop();
    }
  });

  it('without Docker-Content-Digest, the digest is the sha256 of the manifest GET returns', async () => {
    const index = await registry.push('demo/nohead:1', { seed: 'nohead', index: true });
    const proxy = await startRegistryProxy(registry.host, { noDigestHeader: true });
    try {
      const app = `${proxy.host}/demo/nohead:1`;
      const dir = await bundle(app, app);
      const result = await runBundleCli(['pin', dir]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(await readFile(join(dir, 'images.lock'), 'utf8')).toBe(lockText({ [app]: index }));
    } finally {
      await proxy.stop();
    }
  });
});

describe.skipIf(!haveTools)('rick-bundle pin: a registry with token auth', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'token' });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('follows the Bearer challenge to an anonymous pull token and reads the digest', async () => {
    const digest = await registry.push('team/app:3', { seed: 'token', index: true });
    // The registry really requires the token: without one it answers 401.
    const bare = await fetch(`http://${registry.host}/v2/team/app/manifests/3`, { method: 'HEAD' });
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toMatch(/^Bearer realm="http:\/\/127\.0\.0\.1:/);

    const before = registry.tokenRequests.length;
    const app = `${registry.host}/team/app:3`;
    const dir = await bundle(app, app);
    const result = await runBundleCli(['pin', dir]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await readFile(join(dir, 'images.lock'), 'utf8')).toBe(lockText({ [app]: digest }));
    const asked = registry.tokenRequests.slice(before);
    expect(asked.map((q) => [q.get('service'), q.getAll('scope')])).toEqual([
      ['rick-test-registry', ['repository:team/app:pull']],
    ]);
  });

  it('a missing tag behind the token: IMAGE_NOT_FOUND, the old lock kept', async () => {
    const dir = await bundle(`${registry.host}/team/none:1`, `${registry.host}/team/none:1`);
    const result = await pinRefused(dir);
    expect(result.code).toBe(12);
    expect(result.stderr).toContain(
      `error IMAGE_NOT_FOUND: image ${registry.host}/team/none:1 (registry ${registry.host}): the registry has no tag 1 of team/none (404 Not Found)`,
    );
  });
});

describe.skipIf(!haveTools)('rick-bundle pin: a registry with a Basic challenge', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'basic' });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('401 without a Bearer challenge: REGISTRY_ERROR naming the challenge, the old lock kept', async () => {
    const dir = await bundle(`${registry.host}/demo/app:1`, `${registry.host}/demo/app:1`);
    const result = await pinRefused(dir);
    expect(result.code).toBe(12);
    expect(result.stderr).toContain(
      `error REGISTRY_ERROR: image ${registry.host}/demo/app:1 (registry ${registry.host}): the registry answered 401 Unauthorized without a Bearer challenge (WWW-Authenticate: Basic realm="rick-test-basic")`,
    );
  });
});
