/**
 * rick derives the services quadlet generates without running it (for
 * intake rules and collision checks); these tests hold that derivation
 * against podman 5.4's real generator, unit directory by unit directory.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { analyzeBundleUnits } from '../../src/bundle/bundle-units.js';
import { runQuadletDryRun } from '../../src/bundle/quadlet.js';
import { readQuadletUnits } from '../../src/host/intake/unit-namespace.js';
import { quadletPath, requireQuadletUnderCi } from '../helpers/quadlet.js';
import { makeTempDir } from '../helpers/rick-bundle.js';

requireQuadletUnderCi();

let work: string;
beforeEach(async () => {
  work = await makeTempDir('rick-service-names-');
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const image = 'Image=docker.io/library/demo:1';

async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
}

/** unit file name → service, as the real generator reports it (`SourcePath=` of each service). */
async function generated(dir: string): Promise<Map<string, string>> {
  const result = await runQuadletDryRun(dir, { quadletPath: quadletPath as string });
  expect(result.output.filter((l) => /error|converting/i.test(l))).toEqual([]);
  const out = new Map<string, string>();
  for (const block of result.generated.split(/^---/m).slice(1)) {
    const header = /^(.+?)---$/m.exec(block);
    const source = /^SourcePath=(.+)$/m.exec(block);
    if (!header?.[1] || !source?.[1]) continue;
    out.set(source[1].slice(source[1].lastIndexOf('/') + 1), header[1]);
  }
  return out;
}

async function derived(dir: string): Promise<Map<string, string>> {
  const units = await readQuadletUnits('/', [dir]);
  return new Map(units.map((u) => [u.file, u.service]));
}

describe.skipIf(!quadletPath)('service names, rick against podman 5.4 quadlet', () => {
  it('derives the default name of every unit kind, the -pod suffix and templates', async () => {
    const dir = join(work, 'kinds');
    await writeTree(dir, {
      'web.container': `[Container]\n${image}\n`,
      'app.kube': '[Kube]\nYaml=/srv/app.yaml\n',
      'db.pod': '[Pod]\n',
      'data.volume': '[Volume]\n',
      'net.network': '[Network]\n',
      'base.image': `[Image]\n${image}\n`,
      'x-pod.container': `[Container]\n${image}\n`,
      'x.pod': '[Pod]\n',
      'tpl@.container': `[Container]\n${image}\n`,
      'tpl@one.container': `[Container]\n${image}\n`,
    });
    const real = await generated(dir);
    expect(real.get('x-pod.container')).toBe('x-pod.service');
    expect(real.get('x.pod')).toBe('x-pod.service');
    expect(real.get('db.pod')).toBe('db-pod.service');
    expect(real.get('tpl@.container')).toBe('tpl@.service');
    expect(await derived(dir)).toEqual(real);
  });

  it('reads ServiceName= as quadlet does: quotes, spaces, continuations, comments, last value, own group only', async () => {
    const dir = join(work, 'names');
    await writeTree(dir, {
      'quoted.container': `[Container]\n${image}\nServiceName = "quoted-name"  \n`,
      'cont.container': `[Container]\n${image}\nServiceName=first\\\n# a comment inside\n  second\n`,
      'twice.container': `[Container]\n${image}\nServiceName=one\nServiceName=two\n`,
      'other-group.container': `[Unit]\nServiceName=ignored\n[Container]\n${image}\n`,
      'pod-named.pod': '[Pod]\nServiceName=named-pod\n',
      'split.container': `[Container]\n${image}\n[Unit]\nDescription=x\n[Container]\nServiceName=later\n`,
    });
    const real = await generated(dir);
    expect(real.get('quoted.container')).toBe('quoted-name.service');
    expect(real.get('twice.container')).toBe('two.service');
    expect(real.get('other-group.container')).toBe('other-group.service');
    expect(await derived(dir)).toEqual(real);
  });

  it('merges drop-ins as quadlet does: the unit, its template, dash truncations, the kind; by name', async () => {
    const dir = join(work, 'dropins');
    await writeTree(dir, {
      'a-b-c.container': `[Container]\n${image}\n`,
      'a-b-c.container.d/20-name.conf': '[Container]\nServiceName=from-own\n',
      'a-b-c.container.d/10-name.conf': '[Container]\nServiceName=overridden\n',
      'a-.container.d/30-name.conf': '[Container]\nServiceName=from-truncated\n',
      'solo.container': `[Container]\n${image}\n`,
      'container.d/05-all.conf': '[Container]\nServiceName=everyone\n',
      'p.pod': '[Pod]\n',
      'pod.d/x.conf': '[Pod]\nServiceName=all-pods\n',
      'tpl@i.container': `[Container]\n${image}\n`,
      'tpl@.container.d/40.conf': '[Container]\nServiceName=tpl-inst\n',
      'sub/deep.container': `[Container]\n${image}\n`,
      'sub/deep.container.d/50.conf': '[Container]\nServiceName=deep-own\n',
    });
    const real = await generated(dir);
    // Spot checks of podman's own behaviour, so a change in it is noticed here.
    expect(real.get('a-b-c.container')).toBe('from-truncated.service');
    expect(real.get('solo.container')).toBe('everyone.service');
    expect(real.get('p.pod')).toBe('all-pods.service');
    expect(real.get('tpl@i.container')).toBe('tpl-inst.service');
    expect(real.get('deep.container')).toBe('deep-own.service');
    expect(await derived(dir)).toEqual(real);
  });

  it("agrees on a bundle's own drop-ins, the only ones a bundle may ship", async () => {
    const dir = join(work, 'bundle');
    const files: Record<string, string> = {
      'quadlet/app.container': `[Container]\n${image}\n`,
      'quadlet/app.container.d/10-name.conf': '[Container]\nServiceName=app-main\n',
      'quadlet/app.pod': '[Pod]\n',
      'quadlet/data.volume': '[Volume]\nServiceName="data"\n',
    };
    await writeTree(dir, files);
    const manifest = {
      files: Object.keys(files).map((path) => ({
        path,
        kind: 'quadlet' as const,
        sha256: '0'.repeat(64),
        size: 0,
        mode: 0o644,
      })),
    };
    const { units, problems } = analyzeBundleUnits(
      manifest,
      new Map(Object.entries(files).map(([p, c]) => [p, Buffer.from(c)])),
    );
    expect(problems).toEqual([]);
    const real = await generated(join(dir, 'quadlet'));
    expect(new Map(units.map((u) => [u.file, u.service]))).toEqual(real);
    expect(real.get('app.container')).toBe('app-main.service');
  });
});
