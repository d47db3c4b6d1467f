import { chmod, link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { diffTrees, expectTreeUnchanged, snapshotTree } from '../helpers/tree-snapshot.js';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'rick-snap-'));
  await mkdir(join(root, 'etc/rick'), { recursive: true });
  await writeFile(join(root, 'etc/rick/a.env'), 'A=1\n', { mode: 0o600 });
  await symlink('a.env', join(root, 'etc/rick/link'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('tree snapshot', () => {
  it('is equal for an untouched tree and records type, mode, hash and link target', async () => {
    const a = await snapshotTree(root);
    const b = await snapshotTree(root);
    expect(diffTrees(a, b)).toEqual([]);
    expect(a.map((e) => e.path)).toEqual([
      '.',
      'etc',
      'etc/rick',
      'etc/rick/a.env',
      'etc/rick/link',
    ]);
    const file = a.find((e) => e.path === 'etc/rick/a.env');
    expect(file).toMatchObject({ type: 'file', mode: 0o600, size: 4 });
    expect(file?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(a.find((e) => e.path === 'etc/rick/link')).toMatchObject({
      type: 'symlink',
      target: 'a.env',
    });
  });

  it('sees a one-byte change, a mode change, a new file, a removed file, a new hard link and a retargeted link', async () => {
    const before = await snapshotTree(root);
    await writeFile(join(root, 'etc/rick/a.env'), 'A=2\n');
    await chmod(join(root, 'etc/rick'), 0o700);
    await writeFile(join(root, 'new'), '');
    await link(join(root, 'etc/rick/a.env'), join(root, 'hard'));
    await rm(join(root, 'etc/rick/link'));
    await symlink('elsewhere', join(root, 'etc/rick/link'));
    const diff = diffTrees(before, await snapshotTree(root));
    expect(diff).toEqual(
      [
        '+ hard (file)',
        '+ new (file)',
        '~ etc/rick/a.env: sha256, nlink',
        '~ etc/rick/link: target',
        '~ etc/rick: mode',
      ].sort(),
    );
    await expect(expectTreeUnchanged(root, before)).rejects.toThrow(/changed:\n {2}\+ hard/);
  });

  it('leaves out ignored paths and prefixes', async () => {
    const before = await snapshotTree(root, { ignore: ['lock', 'tmp/'] });
    await writeFile(join(root, 'lock'), 'x');
    await mkdir(join(root, 'tmp'));
    await writeFile(join(root, 'tmp/x'), 'x');
    await expectTreeUnchanged(root, before, { ignore: ['lock', 'tmp/'] });
    await rm(join(root, 'etc/rick/a.env'));
    expect(diffTrees(before, await snapshotTree(root, { ignore: ['lock', 'tmp/'] }))).toEqual([
      '- etc/rick/a.env (file)',
    ]);
  });
});
