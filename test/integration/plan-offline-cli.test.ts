/**
 * `node dist/cli/rick-install.js plan --root` from a checkout: it finds
 * podman's quadlet under .cache as rick-bundle does, pulls nothing in an
 * offline tree and prints no pull line, and explains the placeholders of its
 * diff once.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { makeTestKey, writeSignedBundle } from '../helpers/bundle-factory.js';
import { requireBuiltCli, runCli } from '../helpers/cli-process.js';
import { makeHostTree, quadletPath } from '../helpers/host-tree.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

beforeAll(() => {
  requireBuiltCli();
});

describe('rick-install plan, the built CLI, in an offline tree', () => {
  it('uses the quadlet of .cache, prints no pull line, and explains placeholders once', async () => {
    expect(quadletPath, 'podman quadlet in .cache (scripts/fetch-quadlet.sh)').toContain('.cache');
    const key = await makeTestKey();
    const t = await makeHostTree(key);
    try {
      const b = await writeSignedBundle(t.work, key, { version: '1.0.0' });
      const before = await snapshotTree(t.root);
      // No RICK_QUADLET, and no quadlet on this machine's own paths.
      const r = await runCli(['plan', b.bundlePath, '--root', t.root], { RICK_QUADLET: '' });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).not.toContain('quadlet not available');
      expect(r.stdout).toContain('note: offline tree (--root): the install pulls no images');
      expect(r.stdout).not.toMatch(/^(would )?pull /m);
      expect(r.stdout).not.toContain('policy missing');
      const legend = 'in the diff, ***secret:NAME*** stands for the value of the secret NAME';
      expect(r.stdout.split(legend)).toHaveLength(2);
      expect(r.stdout).toContain('***secret:db_password***');
      expect(diffTrees(before, await snapshotTree(t.root))).toEqual([]);
    } finally {
      await t.cleanup();
    }
  });
});
