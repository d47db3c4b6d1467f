/**
 * Local state: never destroy on a guess. One named test per damaged or
 * planted piece of local state found, each through the BUILT rick-install
 * (a real process, `--root`), asserting the exit code, the message and that
 * the host tree is byte for byte what it was.
 */

import { createHash } from 'node:crypto';
import {
  appendFile,
  link,
  mkdir,
  readFile,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { readState } from '../../src/host/state.js';
import {
  makeTestKey,
  sampleFiles,
  type TestKey,
  writeSignedBundle,
} from '../helpers/bundle-factory.js';
import { requireBuiltCli, runCli } from '../helpers/cli-process.js';
import {
  DEMO_GRANT,
  type HostTree,
  makeHostTree,
  quadletPath,
  SECRET,
} from '../helpers/host-tree.js';
import { expectTreeUnchanged, snapshotTree } from '../helpers/tree-snapshot.js';

const env = quadletPath ? { RICK_QUADLET: quadletPath } : {};

let key: TestKey;
const trees: HostTree[] = [];
beforeAll(async () => {
  requireBuiltCli();
  key = await makeTestKey();
});
afterAll(async () => {
  for (const t of trees) await t.cleanup();
});

/** The hosts grant the second bundle, `other`, what they grant `demo`: its accounts and the client group. */
const GRANTS = { demo: DEMO_GRANT, other: 'GROUPS=other postgres-clients\nUSERS=other\n' };

async function newTree(options: Parameters<typeof makeHostTree>[1] = {}): Promise<HostTree> {
  const tree = await makeHostTree(key, { grants: GRANTS, ...options });
  trees.push(tree);
  return tree;
}

const rick = (tree: HostTree, ...args: string[]) => runCli([...args, '--root', tree.root], env);

async function bundle(tree: HostTree, name: string, version: string, marker = version) {
  return (
    await writeSignedBundle(tree.work, key, { name, version, files: sampleFiles(name, marker) })
  ).bundlePath;
}

/** A host with demo 1.0.0 (generation 1), then other 1.0.0 (generation 2, demo carried). */
async function twoBundleHost(secret?: string) {
  const tree = await newTree(secret === undefined ? {} : { secrets: `db_password=${secret}\n` });
  await writeFile(join(tree.root, 'etc/rick/secrets/other.env'), 'db_password=other-secret\n', {
    mode: 0o600,
  });
  const state = join(tree.root, 'var/lib/rick/state.json');
  const first = await rick(tree, await bundle(tree, 'demo', '1.0.0'));
  expect(first.stderr).toBe('');
  const afterFirst = await readFile(state, 'utf8');
  const second = await rick(tree, await bundle(tree, 'other', '1.0.0'));
  expect(second.stderr).toBe('');
  const gen = (n: number) => join(tree.root, 'var/lib/rick/generations', String(n));
  return { tree, state, afterFirst, gen };
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

describe('a state.json that contradicts the host is refused, never read as a crash', () => {
  it('a state.json restored from a backup: nothing uninstalled, no generation deleted; rollback --to keeps what runs', async () => {
    const { tree, state, afterFirst } = await twoBundleHost();
    await writeFile(state, afterFirst);
    const demo11 = await bundle(tree, 'demo', '1.1.0');
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, demo11);
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(
      "error STATE_INCONSISTENT: rick's state contradicts the host, so nothing was changed: current points at generation 2, but state.json confirms generation 1 and no interrupted run is recorded; generation 2 is newer than any state.json records (it knows generations up to 1): state.json is older than the host",
    );
    expect(r.stderr).toContain(
      'hint: keep generation 2, which current points at, and record it: rick-install rollback --to 2; or return to generation 1, which state.json confirms: rick-install rollback --to 1',
    );
    await expectTreeUnchanged(tree.root, before);

    // The repair: record what runs, restarting nothing and deleting nothing.
    const repair = await rick(tree, 'rollback', '--to', '2');
    expect(repair.stderr).toBe('');
    expect(repair.code).toBe(0);
    expect(repair.stdout).toContain('recorded generation 2, which is live, as confirmed');
    const repaired = await readState(state);
    expect(repaired).toMatchObject({
      live: 2,
      lastGeneration: 2,
      bundles: { demo: { installed: '1.0.0' }, other: { installed: '1.0.0', highest: '1.0.0' } },
    });
    const again = await rick(tree, demo11);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('installed demo 1.1.0 as generation 3');
    expect(
      await readFile(
        join(tree.root, 'var/lib/rick/generations/3/bundles/other/env/other.env'),
        'utf8',
      ),
    ).toContain('DB_PASSWORD=other-secret');
  });

  it('a state.json reset to a minimal valid file: refused, naming every disagreement', async () => {
    const { tree, state } = await twoBundleHost();
    await writeFile(state, '{"schemaVersion":1}\n');
    const demo11 = await bundle(tree, 'demo', '1.1.0');
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, demo11);
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(
      'current points at generation 2, but state.json confirms none and no interrupted run is recorded; generations 1, 2 are newer than any state.json records (it knows generations up to 0)',
    );
    expect(r.stderr).toContain('rick-install rollback --to 2');
    await expectTreeUnchanged(tree.root, before);
    // plan predicts the same refusal, and status says why and how to repair.
    const plan = await rick(tree, 'plan', demo11);
    expect(plan.code).toBe(ExitCode.rollbackFailed);
    expect(plan.stderr).toContain('current points at generation 2, but state.json confirms none');
    const status = await rick(tree, 'status');
    expect(status.code).toBe(0);
    expect(status.stdout).toContain("warning: rick's state contradicts the host");
    expect(status.stdout).toContain('to repair: keep generation 2');
    await expectTreeUnchanged(tree.root, before);
  });

  it('a state.json whose versions differ from the live generation: refused', async () => {
    const { tree, state } = await twoBundleHost();
    const edited = await readState(state);
    edited.bundles.demo = { installed: '0.9.0', highest: '0.9.0', quarantined: [] };
    await writeFile(state, JSON.stringify(edited));
    const demo = await bundle(tree, 'demo', '0.9.5');
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, demo);
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(
      'state.json records demo 0.9.0 as installed, but generation 2 holds demo 1.0.0',
    );
    await expectTreeUnchanged(tree.root, before);
  });

  it('a state.json that is not JSON: refused with a hint that no longer leads to harm', async () => {
    const { tree, state } = await twoBundleHost();
    await writeFile(state, '{"schemaVersion":1,');
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'demo', '1.1.0'));
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(`error STATE_INCONSISTENT: ${state} is not valid JSON`);
    expect(r.stderr).toContain('rick checks either against the live generation before trusting it');
    await expectTreeUnchanged(tree.root, before);
  });

  it('an intent record that does not match current: refused, the generations it names kept', async () => {
    const { tree } = await twoBundleHost();
    await writeFile(
      join(tree.root, 'var/lib/rick/intent.json'),
      `${JSON.stringify({ schemaVersion: 1, operation: 'install', reason: 'install demo 9.0.0', from: 1, to: 3, created: true, pid: 1, time: 't' })}\n`,
    );
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'demo', '1.1.0'));
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(
      'an interrupted run (install demo 9.0.0) recorded switching from generation 1 to generation 3, but current points at generation 2 and state.json confirms generation 2',
    );
    await expectTreeUnchanged(tree.root, before);
  });
});

describe('drift is never carried into a new generation', () => {
  it('a hand-edited env file of another bundle refuses the install (exit 10, naming it); installing that bundle again repairs it', async () => {
    const { tree, gen } = await twoBundleHost();
    const edited = join(gen(2), 'bundles/demo/env/demo.env');
    await appendFile(edited, 'DEBUG=1\n');
    const other11 = await bundle(tree, 'other', '1.1.0');
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, other11);
    expect(r.code).toBe(ExitCode.drift);
    expect(r.stderr).toContain(
      `error DRIFT: the live generation 2 was changed by hand, and an install would carry it on: ${edited} (content changed since generation 2 was written)`,
    );
    expect(r.stderr).toContain('install demo again (the same version re-renders its files)');
    await expectTreeUnchanged(tree.root, before);
    const verify = await rick(tree, 'verify');
    expect(verify.code).toBe(ExitCode.drift);
    expect(verify.stderr).toContain(
      `drift: ${edited}: content changed since generation 2 was written`,
    );

    const repair = await rick(tree, await bundle(tree, 'demo', '1.0.0'));
    expect(repair.stderr).toBe('');
    expect(repair.code).toBe(0);
    expect(repair.stdout).toContain(
      `demo 1.0.0 is installed, but its live files were changed by hand (${edited}): rendering it again`,
    );
    expect((await rick(tree, 'verify')).code).toBe(0);
    const carried = await rick(tree, other11);
    expect(carried.stderr).toBe('');
    expect(carried.code).toBe(0);
    expect(await readFile(join(gen(4), 'bundles/demo/env/demo.env'), 'utf8')).not.toContain(
      'DEBUG=1',
    );
  });

  it("a hand-edited manifest.json is named, and installing that bundle's version again repairs it", async () => {
    const { tree, gen } = await twoBundleHost();
    const manifest = join(gen(2), 'bundles/demo/manifest.json');
    await appendFile(manifest, ' ');
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'other', '1.1.0'));
    expect(r.code).toBe(ExitCode.drift);
    expect(r.stderr).toContain(`${manifest} (content changed since generation 2 was written)`);
    await expectTreeUnchanged(tree.root, before);
    const repair = await rick(tree, await bundle(tree, 'demo', '1.0.0'));
    expect(repair.stderr).toBe('');
    expect(repair.code).toBe(0);
    expect(repair.stdout).toContain(`(${manifest}): rendering it again`);
    const verify = await rick(tree, 'verify');
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
  });

  it('a unit edited together with its recorded sha256 is still caught by rendering it again', async () => {
    const { tree, gen } = await twoBundleHost();
    const unit = join(gen(2), 'quadlet/demo/demo-app.container');
    const text = (await readFile(unit, 'utf8')).replace(
      'Image=registry.example.org/demo:1',
      'Image=registry.example.org/evil:1',
    );
    await writeFile(unit, text);
    const recordFile = join(gen(2), 'generation.json');
    const record = JSON.parse(await readFile(recordFile, 'utf8'));
    record.bundles.demo.files['quadlet/demo-app.container'] = sha256(text);
    await writeFile(recordFile, JSON.stringify(record));
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'other', '1.1.0'));
    expect(r.code).toBe(ExitCode.drift);
    expect(r.stderr).toContain(`${unit} (does not match its source and recorded facts)`);
    await expectTreeUnchanged(tree.root, before);
  });

  it('a carried file replaced by a symbolic link is refused, and what it points at never shown', async () => {
    const { tree, gen } = await twoBundleHost();
    const victim = join(tree.root, 'etc/victim');
    await writeFile(victim, 'root-only-content\n');
    const env = join(gen(2), 'bundles/demo/env/demo.env');
    await rm(env);
    await symlink(victim, env);
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'other', '1.1.0'));
    expect(r.code).toBe(ExitCode.drift);
    expect(r.stderr).toContain(`${env} (is a symbolic link)`);
    expect(`${r.stdout}${r.stderr}`).not.toContain('root-only-content');
    await expectTreeUnchanged(tree.root, before);
  });
});

describe('carried content is rendered again from its source and facts', () => {
  it('a secret that holds a generation path is carried intact (string replacement would rewrite it)', async () => {
    const secret = 'x/var/lib/rick/generations/1/y';
    const { tree, gen } = await twoBundleHost(secret);
    const g1 = await readFile(join(gen(1), 'bundles/demo/env/demo.env'), 'utf8');
    const g2 = await readFile(join(gen(2), 'bundles/demo/env/demo.env'), 'utf8');
    expect(g1).toContain(`DB_PASSWORD=${secret}\n`);
    expect(g2).toBe(g1);
    expect(await readFile(join(gen(2), 'quadlet/demo/demo-app.container'), 'utf8')).toContain(
      'EnvironmentFile=/var/lib/rick/generations/2/bundles/demo/env/demo.env',
    );
    const verify = await rick(tree, 'verify');
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
  });
});

describe('links are never followed where rick keeps its state', () => {
  it('a symbolic link at the lock path is refused; its target is untouched', async () => {
    const tree = await newTree();
    const victim = join(tree.root, 'etc/victim');
    await writeFile(victim, 'keep me\n');
    await mkdir(join(tree.root, 'var/lib/rick'), { recursive: true });
    await symlink(victim, join(tree.root, 'var/lib/rick/lock'));
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'demo', '1.0.0'));
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(
      `error STATE_INCONSISTENT: the install lock ${join(tree.root, 'var/lib/rick/lock')} is a symbolic link`,
    );
    await expectTreeUnchanged(tree.root, before);
  });

  it('a hard link at the lock path is refused; the other file is untouched', async () => {
    const tree = await newTree();
    const victim = join(tree.root, 'etc/victim');
    await writeFile(victim, 'keep me\n');
    await mkdir(join(tree.root, 'var/lib/rick'), { recursive: true });
    await link(victim, join(tree.root, 'var/lib/rick/lock'));
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'demo', '1.0.0'));
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain('var/lib/rick/lock has 2 hard links');
    await expectTreeUnchanged(tree.root, before);
  });

  it('generations/ as a symbolic link is refused', async () => {
    const { tree } = await twoBundleHost();
    const generations = join(tree.root, 'var/lib/rick/generations');
    await rename(generations, join(tree.root, 'elsewhere'));
    await symlink('../../../elsewhere', generations);
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'demo', '1.1.0'));
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(`error STATE_INCONSISTENT: ${generations} is a symbolic link`);
    await expectTreeUnchanged(tree.root, before);
  });

  it('a planted /etc/containers/systemd/rick link is refused before anything is written', async () => {
    const tree = await newTree();
    await mkdir(join(tree.root, 'srv/units'), { recursive: true });
    await mkdir(join(tree.root, 'etc/containers/systemd'), { recursive: true });
    const planted = join(tree.root, 'etc/containers/systemd/rick');
    await symlink('/srv/units', planted);
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'demo', '1.0.0'));
    expect(r.code).toBe(ExitCode.drift);
    expect(r.stderr).toContain(
      `error DRIFT: ${planted} points at /srv/units, expected /var/lib/rick/current/quadlet`,
    );
    await expectTreeUnchanged(tree.root, before);
  });

  it('current pointing outside generations/ is refused, not followed', async () => {
    const { tree } = await twoBundleHost();
    const current = join(tree.root, 'var/lib/rick/current');
    await rm(current);
    await symlink('../../../srv', current);
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'demo', '1.1.0'));
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(
      `error STATE_INCONSISTENT: ${current} points at ../../../srv, not at a generation (generations/<n>)`,
    );
    await expectTreeUnchanged(tree.root, before);
  });

  it("a generation record naming a bundle outside its directory is refused by the manifest's own rules", async () => {
    const { tree, gen } = await twoBundleHost();
    const recordFile = join(gen(2), 'generation.json');
    const record = JSON.parse(await readFile(recordFile, 'utf8'));
    record.bundles['../../../../../etc'] = record.bundles.demo;
    await writeFile(recordFile, JSON.stringify(record));
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'demo', '1.1.0'));
    expect(r.code).toBe(ExitCode.rollbackFailed);
    expect(r.stderr).toContain(
      `generation 2 is unreadable: ${recordFile} is not a generation record`,
    );
    expect(r.stderr).toContain('bundles.../../../../../etc: Invalid key in record');
    await expectTreeUnchanged(tree.root, before);
  });
});

describe('secrets files and fresh hosts', () => {
  it('an invalid line in a secrets file is reported by line number, never by its value', async () => {
    const tree = await newTree({
      secrets: `db_password=${SECRET}\nhttps://admin:hunter2@db.example.org/?a=b\n`,
    });
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'demo', '1.0.0'));
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toContain(
      `error CONFIG_INVALID: ${join(tree.root, 'etc/rick/secrets/demo.env')}: line 2: the text before "=" is not a key`,
    );
    for (const fragment of ['hunter2', 'admin', 'db.example.org', SECRET]) {
      expect(r.stdout).not.toContain(fragment);
      expect(r.stderr).not.toContain(fragment);
    }
    await expectTreeUnchanged(tree.root, before);
  });

  it('a value with a control character is named by its key, never shown', async () => {
    const tree = await newTree({ secrets: 'db_password=abc\tsecret-tail\n' });
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'demo', '1.0.0'));
    expect(r.code).toBe(ExitCode.missingPrerequisite);
    expect(r.stderr).toContain('line 1: db_password contains a control character');
    expect(`${r.stdout}${r.stderr}`).not.toContain('secret-tail');
    await expectTreeUnchanged(tree.root, before);
  });

  it('a missing secret on a fresh host leaves nothing behind, not even the lock or /var', async () => {
    const tree = await newTree({ secrets: 'unrelated=1\n' });
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'demo', '1.0.0'));
    expect(r.code).toBe(ExitCode.missingPrerequisite);
    expect(r.stderr).toContain(
      `error FACT_MISSING: missing host facts: secret db_password (in ${join(tree.root, 'etc/rick/secrets/demo.env')})`,
    );
    await expectTreeUnchanged(tree.root, before);
    expect(before.some((e) => e.path.startsWith('var'))).toBe(false);
  });

  it('a missing group on a fresh host leaves nothing behind', async () => {
    const tree = await newTree({ groups: ['root:x:0:'] });
    const before = await snapshotTree(tree.root);
    const r = await rick(tree, await bundle(tree, 'demo', '1.0.0'));
    expect(r.code).toBe(ExitCode.missingPrerequisite);
    expect(r.stderr).toContain('error FACT_MISSING: missing host facts: group postgres-clients');
    await expectTreeUnchanged(tree.root, before);
  });
});
