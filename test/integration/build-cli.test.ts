import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../../src/cli/rick-bundle.js';
import { useBuildWorkspace } from '../helpers/build-workspace.js';
import { runBundleCli, writeBundleDir } from '../helpers/rick-bundle.js';

const ws = useBuildWorkspace('rick-cli-');
const { expectNoOutput: noOutput } = ws;

const unit = '[Container]\nImage=docker.io/library/demo:{{ tag }}\n';
const definition =
  'name: demo\nneeds: { users: [root] }\nvariables:\n  tag: "1"\nfiles:\n  quadlet: [quadlet/demo.container.j2]\n';

describe('rick-bundle program', () => {
  it('creates a fresh program without parsing anything', () => {
    const a = createProgram();
    const b = createProgram();
    expect(a).not.toBe(b);
    expect(a.commands.map((c) => c.name())).toEqual([
      'build',
      'sign',
      'verify',
      'keygen',
      'index',
      'keys',
      'init',
      'pin',
    ]);
  });

  it('--help lists the commands and every exit code', async () => {
    const result = await runBundleCli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/build \[options\] <bundle-dir>/);
    expect(result.stdout).toContain('Exit codes:');
    expect(result.stdout).toMatch(/ {3}3 {2}invalid bundle, bundle definition or template/);
    expect(result.stdout).toMatch(/ {3}4 {2}signature missing, invalid or not by a trusted key/);
  });

  it('prints a stack only with --debug', async () => {
    const args = ['build', join(ws.work, 'none'), '--version', '1.0.0', '--out', ws.out];
    const plain = await runBundleCli(args);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/^error INPUT_NOT_FOUND: cannot read bundle definition/);
    expect(plain.stderr).not.toMatch(/\n\s+at /);
    const debug = await runBundleCli(['--debug', ...args]);
    expect(debug.code).toBe(2);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('refuses a template listed in bundle.yaml that the bundle lacks', async () => {
    const dir = await writeBundleDir(join(ws.work, 'demo'), {
      'bundle.yaml': `${definition}  env: [env/demo.env.j2]\n`,
      'quadlet/demo.container.j2': unit,
    });
    const result = await runBundleCli([
      'build',
      dir,
      '--version',
      '1.0.0',
      '--out',
      ws.out,
      '--installer',
      ws.installer,
    ]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      /error DEFINITION_INVALID: .*bundle\.yaml: files\.env\.0: env\/demo\.env\.j2 does not exist in the bundle/,
    );
    await noOutput();
  });

  it('refuses a bundle whose gate timeouts add up past the activation limit, naming the services and the sum, and writes nothing', async () => {
    const services = [
      'services:',
      '  - unit: demo.container',
      '    activeTimeoutSec: 900',
      '    settleSec: 30',
      '    checks:',
      '      - { type: http, url: "http://127.0.0.1:8080/", timeoutSec: 600 }',
      '',
    ].join('\n');
    const dir = await writeBundleDir(join(ws.work, 'demo'), {
      'bundle.yaml': `${definition}${services}`,
      'quadlet/demo.container.j2': unit,
    });
    const args = ['build', dir, '--version', '1.0.0', '--out', ws.out, '--installer', ws.installer];
    const result = await runBundleCli(args);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(
      "error DEFINITION_INVALID: the services' gate timeouts add up to 1530s, past the activation limit of 1500s: demo.service 1530s",
    );
    expect(result.stderr).toContain("rick-update.service's TimeoutStartSec=1h");
    await noOutput();

    // Within the limit, settleSec is written to the manifest as declared.
    await writeFile(
      join(dir, 'bundle.yaml'),
      `${definition}${services.replace('activeTimeoutSec: 900', 'activeTimeoutSec: 800')}`,
    );
    const ok = await runBundleCli(args);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(await readdir(ws.out)).toContain('demo-1.0.0.tgz');
  });

  it('refuses a vars file that sets a name rick provides, or is not a mapping', async () => {
    const dir = await writeBundleDir(join(ws.work, 'demo'), {
      'bundle.yaml': definition,
      'quadlet/demo.container.j2': unit,
    });
    const vars = join(ws.work, 'vars.yaml');
    await writeFile(vars, 'bundle_version: 9.9.9\n');
    const reserved = await runBundleCli([
      'build',
      dir,
      '--version',
      '1.0.0',
      '--out',
      ws.out,
      '--installer',
      ws.installer,
      '--vars',
      vars,
    ]);
    expect(reserved.code).toBe(3);
    expect(reserved.stderr).toMatch(
      /vars\.yaml: bundle_version: bundle_version is provided by rick/,
    );
    await writeFile(vars, '- a\n- b\n');
    const list = await runBundleCli([
      'build',
      dir,
      '--version',
      '1.0.0',
      '--out',
      ws.out,
      '--installer',
      ws.installer,
      '--vars',
      vars,
    ]);
    expect(list.code).toBe(3);
    expect(list.stderr).toMatch(/error DEFINITION_INVALID: .*vars\.yaml: \(root\): /);
    await writeFile(vars, 'a: [\n');
    const broken = await runBundleCli([
      'build',
      dir,
      '--version',
      '1.0.0',
      '--out',
      ws.out,
      '--installer',
      ws.installer,
      '--vars',
      vars,
    ]);
    expect(broken.code).toBe(3);
    expect(broken.stderr).toMatch(/vars\.yaml: not valid YAML/);
    await noOutput();
  });

  it('names an undefined variable used in another variable', async () => {
    const dir = await writeBundleDir(join(ws.work, 'demo'), {
      'bundle.yaml': `${definition.replace('tag: "1"', 'tag: "{{ base_tag }}-x"')}`,
      'quadlet/demo.container.j2': unit,
    });
    const result = await runBundleCli([
      'build',
      dir,
      '--version',
      '1.0.0',
      '--out',
      ws.out,
      '--installer',
      ws.installer,
    ]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      /error UNDEFINED_VARIABLE: undefined variable base_tag in variable tag/,
    );
    await noOutput();
  });

  it('refuses a malformed --source-commit and SOURCE_DATE_EPOCH', async () => {
    const dir = await writeBundleDir(join(ws.work, 'demo'), {
      'bundle.yaml': definition,
      'quadlet/demo.container.j2': unit,
    });
    const base = ['build', dir, '--version', '1.0.0', '--out', ws.out, '--installer', ws.installer];
    const commit = await runBundleCli([...base, '--source-commit', 'main']);
    expect(commit.code).toBe(2);
    expect(commit.stderr).toMatch(/source commit "main" is not a hex commit id/);
    const sde = await runBundleCli(base, {
      env: { PATH: process.env.PATH, SOURCE_DATE_EPOCH: 'yesterday' },
    });
    expect(sde.code).toBe(2);
    expect(sde.stderr).toMatch(/SOURCE_DATE_EPOCH must be whole seconds/);
    await noOutput();
  });
});
