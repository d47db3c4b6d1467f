/**
 * The set-up the host tests share: one signing key per test file, made once
 * (keys are slow to generate), and host trees (test/helpers/host-tree.ts)
 * made per test with that key, every one removed after its test.
 *
 * Usage, at the top level of a test file:
 *   const hosts = useHostTrees();
 *   … const tree = await hosts.make(); await writeSignedBundle(tree.work, hosts.key, …);
 */
import { afterEach, beforeAll } from 'vitest';
import { makeTestKey, type TestKey } from './bundle-factory.js';
import { type HostTree, makeHostTree } from './host-tree.js';

export interface HostTrees {
  /** The file's signing key, trusted by every tree made here. */
  readonly key: TestKey;
  /** A new host tree trusting the key (makeHostTree's options), removed after the test. */
  make(options?: Parameters<typeof makeHostTree>[1]): Promise<HostTree>;
}

export function useHostTrees(): HostTrees {
  let key: TestKey | undefined;
  const made: HostTree[] = [];
  beforeAll(async () => {
    key = await makeTestKey();
  });
  afterEach(async () => {
    for (const tree of made.splice(0)) await tree.cleanup();
  });
  const hosts: HostTrees = {
    get key() {
      if (key === undefined) throw new Error('the key is made in beforeAll: use it inside a test');
      return key;
    },
    async make(options) {
      const tree = await makeHostTree(hosts.key, options);
      made.push(tree);
      return tree;
    },
  };
  return hosts;
}
