/**
 * Under --root every path a refusal names is the path under the root: an
 * operator working on an offline tree must be told where to put the key in
 * that tree, not on the machine running the command.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestKey, type TestKey, writeSignedBundle } from '../helpers/bundle-factory.js';
import { requireBuiltCli, runCli } from '../helpers/cli-process.js';
import { type HostTree, makeHostTree } from '../helpers/host-tree.js';
import { expectTreeUnchanged, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let tree: HostTree | undefined;

beforeAll(async () => {
  requireBuiltCli();
  key = await makeTestKey();
});

afterEach(async () => {
  await tree?.cleanup();
  tree = undefined;
});

describe('rick-install --root', () => {
  it('a missing key directory is named under the root, and nothing changes', async () => {
    tree = await makeHostTree(key);
    await rm(join(tree.root, 'etc/rick/keys'), { recursive: true });
    const bundle = await writeSignedBundle(join(tree.work, 'dl'), key);
    const before = await snapshotTree(tree.root);
    const result = await runCli([bundle.bundlePath, '--root', tree.root]);
    expect(result.code).toBe(4);
    const keys = join(tree.root, 'etc/rick/keys');
    expect(result.stderr).toContain(`error KEYRING_INVALID: cannot read keyring ${keys}`);
    expect(result.stderr).toContain(
      `hint: put the release public key in ${keys} or pass --keyring`,
    );
    expect(result.stderr).not.toMatch(/ \/etc\/rick\/keys/);
    await expectTreeUnchanged(tree.root, before);
  });
});
