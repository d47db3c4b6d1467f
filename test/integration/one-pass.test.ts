/**
 * One pass: a host missing a group, a secret and a grant at once is told
 * all three by `plan` and by `install`, in the same order, with the same
 * exit code (FACT_MISSING, 5: the facts come before the grant), and the
 * tree stays as it was. `--grant` asks only once the facts are there, and a
 * failed install leaves no grant behind. POLICY_REFUSED prints its grant
 * lines as the grant file takes them.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { parseGrant } from '../../src/host/policy/grant.js';
import {
  type FactoryFile,
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { FakeHost } from '../helpers/fake-host.js';
import { type HostTree, makeHostTree, runInstaller } from '../helpers/host-tree.js';
import { diffTrees, snapshotTree } from '../helpers/tree-snapshot.js';

let key: TestKey;
let tree: HostTree | undefined;
beforeAll(async () => {
  key = await makeTestKey();
});
afterEach(async () => {
  await tree?.cleanup();
  tree = undefined;
});

/** The sample bundle, its container also mounting host directories (each needs PATHS=). */
function withVolumes(...volumes: string[]): FactoryFile[] {
  return sampleFiles('demo').map((f) =>
    f.path.endsWith('.container')
      ? {
          ...f,
          content: `${String(f.content)}\n[Container]\n${volumes.map((v) => `Volume=${v}`).join('\n')}\n`,
        }
      : f,
  );
}

/** A host without postgres-clients, without the secret, and a grant without PATHS=/srv/demo. */
async function hostMissingThree() {
  tree = await makeHostTree(key, { groups: ['root:x:0:'], secrets: '' });
  const host = new FakeHost({ root: tree.root });
  const b = await writeSignedBundle(tree.work, key, { files: withVolumes('/srv/demo:/data') });
  return { host, b, t: tree };
}

const errorLine = (stderr: string) => stderr.split('\n').find((l) => l.startsWith('error '));

describe('one pass: every missing fact, secret and grant at once', () => {
  it('plan and install both name the group, the secret and the grant, in the same order, and change nothing', async () => {
    const { host, b, t } = await hostMissingThree();
    const secrets = join(t.root, 'etc/rick/secrets/demo.env');
    const grant = join(t.root, 'etc/rick/policy.d/demo.conf');
    const expected = `error FACT_MISSING: missing host facts: group postgres-clients (the bundle uses them but does not create them), secret db_password (in ${secrets}); not granted by ${grant}: path /srv/demo:rw`;
    const before = await snapshotTree(t.root);

    const plan = await runInstaller(host, ['plan', b.bundlePath, '--root', t.root]);
    expect(plan.code).toBe(ExitCode.missingPrerequisite);
    expect(errorLine(plan.stderr)).toBe(expected);
    expect(diffTrees(before, await snapshotTree(t.root))).toEqual([]);

    const install = await runInstaller(host, [b.bundlePath, '--root', t.root]);
    expect(install.code).toBe(ExitCode.missingPrerequisite);
    expect(errorLine(install.stderr)).toBe(expected);
    // The same hint too: what to create, then the grant line as the file takes it.
    expect(install.stderr).toBe(plan.stderr);
    expect(install.stderr).toContain(
      `then to allow it, add this line to ${grant}:\nPATHS=/srv/demo:rw\n`,
    );
    expect(diffTrees(before, await snapshotTree(t.root))).toEqual([]);
  });

  it('on a live host with a podman too old as well, plan and install stop at the same check', async () => {
    tree = await makeHostTree(key, { groups: ['root:x:0:'], secrets: '' });
    const host = new FakeHost({ root: tree.root, podmanVersion: '4.3.1' });
    const b = await writeSignedBundle(tree.work, key);
    const before = await snapshotTree(tree.root);
    const plan = await runInstaller(host, ['plan', b.bundlePath, '--root', tree.root]);
    const install = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    for (const r of [plan, install]) {
      expect(r.code).toBe(ExitCode.missingPrerequisite);
      expect(errorLine(r.stderr)).toMatch(
        /^error FACT_MISSING: missing host facts: group postgres-clients .*, secret db_password /,
      );
    }
    expect(install.stderr).toBe(plan.stderr);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
    // Once they are there, both name podman.
    await writeFile(join(tree.root, 'etc/group'), 'root:x:0:\npostgres-clients:x:4001:\n');
    await writeFile(join(tree.root, 'etc/rick/secrets/demo.env'), 'db_password=x\n', {
      mode: 0o600,
    });
    const before2 = await snapshotTree(tree.root);
    const plan2 = await runInstaller(host, ['plan', b.bundlePath, '--root', tree.root]);
    const install2 = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    for (const r of [plan2, install2]) {
      expect(r.code).toBe(ExitCode.missingPrerequisite);
      expect(errorLine(r.stderr)).toMatch(/^error PREREQUISITE_MISSING: podman 4\.3\.1 is too old/);
    }
    expect(diffTrees(before2, await snapshotTree(tree.root))).toEqual([]);
  });

  it('once the facts are there, the grant alone is refused by both with POLICY_REFUSED', async () => {
    const { host, b, t } = await hostMissingThree();
    await writeFile(join(t.root, 'etc/group'), 'root:x:0:\npostgres-clients:x:4001:\n');
    await writeFile(join(t.root, 'etc/rick/secrets/demo.env'), 'db_password=x\n', { mode: 0o600 });
    const before = await snapshotTree(t.root);
    const plan = await runInstaller(host, ['plan', b.bundlePath, '--root', t.root]);
    const install = await runInstaller(host, [b.bundlePath, '--root', t.root]);
    for (const r of [plan, install]) {
      expect(r.code).toBe(ExitCode.policy);
      expect(errorLine(r.stderr)).toMatch(
        /^error POLICY_REFUSED: demo 1\.0\.0 needs what .*\/demo\.conf does not grant: path \/srv\/demo:rw/,
      );
    }
    expect(install.stderr).toBe(plan.stderr);
    expect(diffTrees(before, await snapshotTree(t.root))).toEqual([]);
  });
});

describe('POLICY_REFUSED: grant lines as the grant file takes them', () => {
  it('prints one line per key, unindented; pasted into the grant, they parse and the install goes through', async () => {
    tree = await makeHostTree(key, { grants: { demo: 'USERS=demo\n' } });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key, {
      files: withVolumes('/srv/demo/data:/data', '/srv/demo/logs:/logs', '/srv/other:/other'),
      needs: { groups: ['postgres-clients'], paths: ['/srv/demo:rw', '/srv/other:rw'] },
    });
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(r.code).toBe(ExitCode.policy);
    const grantFile = join(tree.root, 'etc/rick/policy.d/demo.conf');
    expect(r.stderr).toContain(
      `hint: nothing was changed; to allow it, add these 2 lines to ${grantFile}:\nGROUPS=postgres-clients\nPATHS=/srv/demo:rw /srv/other:rw\n`,
    );
    // Five uses (the group, two declared paths, three mounts below them) by two lines: said so.
    expect(r.stderr).toMatch(
      /\n\(these 2 lines cover all \d+ needs named: one line per kind lists all its values, and a granted directory covers the paths below it\)\n/,
    );
    expect(r.stderr).toContain('or run `rick-install --grant` on the bundle');
    expect(r.stderr).not.toContain(' | ');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);

    // Pasted as printed, the lines parse (no CONFIG_INVALID) and grant what was refused.
    const pasted = r.stderr.split(':\n')[1]?.split('\n').slice(0, 2) ?? [];
    expect(pasted).toEqual(['GROUPS=postgres-clients', 'PATHS=/srv/demo:rw /srv/other:rw']);
    const text = `${await readFile(grantFile, 'utf8')}${pasted.join('\n')}\n`;
    expect(() => parseGrant(text, grantFile)).not.toThrow();
    await writeFile(grantFile, text);
    const again = await runInstaller(host, [b.bundlePath, '--root', tree.root]);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
  });
});

describe('rick-install --grant: asked last, and taken back when the install fails', () => {
  it('with a secret missing, names it and the grant needed, asks nothing and writes no grant', async () => {
    tree = await makeHostTree(key, { grants: {}, secrets: '' });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key);
    const before = await snapshotTree(tree.root);
    const asked: string[] = [];
    const r = await runInstaller(host, [b.bundlePath, '--grant', '--root', tree.root], {
      prompt: async (q) => {
        asked.push(q);
        return 'y';
      },
    });
    expect(r.code).toBe(ExitCode.missingPrerequisite);
    expect(errorLine(r.stderr)).toMatch(
      /^error FACT_MISSING: missing host facts: secret db_password \(in .*\/demo\.env\); not granted by .*\/demo\.conf: group postgres-clients$/,
    );
    expect(asked).toEqual([]);
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('--grant --yes with a secret missing leaves no policy.d/demo.conf behind', async () => {
    tree = await makeHostTree(key, { grants: {}, secrets: '' });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key);
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [b.bundlePath, '--grant', '--yes', '--root', tree.root]);
    expect(r.code).toBe(ExitCode.missingPrerequisite);
    expect(r.stderr).toContain('error FACT_MISSING: missing host facts: secret db_password');
    expect(r.stdout).not.toContain('granted: wrote');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });

  it('an install that fails after the grant was written restores the grant file as it was', async () => {
    tree = await makeHostTree(key, { grants: { demo: '# kept\nUSERS=demo\n' } });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key);
    const before = await snapshotTree(tree.root);
    // podman's quadlet refuses the units after the grant is written: the install fails late.
    const r = await runInstaller(host, [b.bundlePath, '--grant', '--yes', '--root', tree.root], {
      validateUnits: async () => {
        const { RickError } = await import('../../src/errors.js');
        throw new RickError('QUADLET_REJECTED', 'quadlet rejects the units: test');
      },
    });
    expect(r.code).toBe(ExitCode.invalidBundle);
    expect(r.stdout).toContain('granted: wrote');
    expect(r.stdout).toContain('not installed: ');
    expect(r.stderr).toContain('error QUADLET_REJECTED: quadlet rejects the units: test');
    expect(await readFile(join(tree.root, 'etc/rick/policy.d/demo.conf'), 'utf8')).toBe(
      '# kept\nUSERS=demo\n',
    );
    // What systemd-sysusers made before quadlet refused is the install's own
    // affair; of the grant directory nothing changed.
    const changed = diffTrees(before, await snapshotTree(tree.root));
    expect(changed.filter((d) => d.includes('etc/rick'))).toEqual([]);
  });

  it('after the operator answers no, the refusal does not offer --grant again', async () => {
    tree = await makeHostTree(key, { grants: {} });
    const host = new FakeHost({ root: tree.root });
    const b = await writeSignedBundle(tree.work, key);
    const before = await snapshotTree(tree.root);
    const r = await runInstaller(host, [b.bundlePath, '--grant', '--root', tree.root], {
      prompt: async () => 'n',
    });
    expect(r.code).toBe(ExitCode.policy);
    expect(r.stdout).toContain('not granted');
    expect(r.stderr).toContain(
      `hint: nothing was changed; to allow it, add this line to ${join(tree.root, 'etc/rick/policy.d/demo.conf')}:\nGROUPS=postgres-clients\n`,
    );
    expect(r.stderr).not.toContain('--grant');
    expect(diffTrees(before, await snapshotTree(tree.root))).toEqual([]);
  });
});
