/**
 * Security: a bundle's templates can include, import and extend only files
 * of the bundle itself and of the shared templates/ directory. Paths with
 * `..`, absolute paths and symlinks that lead elsewhere are refused, and
 * nothing of the file outside reaches any output.
 */
import { mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRenderer } from '../../src/build/render.js';
import {
  makeTempDir,
  runBundleCli,
  writeBundleDir,
  writeTestInstaller,
} from '../helpers/rick-bundle.js';

const SECRET = 'TOP-SECRET-CONTENT-OUTSIDE-THE-BUNDLE';
let repo: string;
let bundleDir: string;
let templatesDir: string;

beforeEach(async () => {
  repo = await makeTempDir('rick-confine-');
  bundleDir = join(repo, 'bundles/demo');
  templatesDir = join(repo, 'templates');
  await mkdir(bundleDir, { recursive: true });
  await mkdir(templatesDir, { recursive: true });
  await writeFile(join(repo, 'outside.j2'), SECRET);
  await writeFile(join(repo, 'bundles/other.j2'), SECRET);
  await writeFile(join(templatesDir, 'shared.j2'), 'shared {{ x }}');
  await writeFile(join(templatesDir, 'macros.j2'), '{% macro m(v) %}macro {{ v }}{% endmacro %}');
  await writeFile(join(templatesDir, 'layout.j2'), 'layout {% block body %}{% endblock %}');
});
afterEach(async () => {
  await rm(repo, { recursive: true, force: true });
});

async function renderFile(source: string): Promise<string> {
  await writeFile(join(bundleDir, 'unit.j2'), source);
  return createRenderer({ bundleDir, templatesDir }).render('unit.j2', { x: 'X' });
}

describe('template includes are confined to the bundle and templates/', () => {
  it('allows includes, imports and extends inside the bundle and templates/', async () => {
    await writeFile(join(bundleDir, 'part.j2'), 'part {{ x }}');
    await mkdir(join(bundleDir, 'sub'));
    await writeFile(join(bundleDir, 'sub/inner.j2'), '{% include "../part.j2" %}');
    // `../` is relative to the including template and stays inside the bundle.
    expect(await renderFile('{% include "sub/inner.j2" %}')).toBe('part X');
    expect(await renderFile('{% include "part.j2" %}|{% include "shared.j2" %}')).toBe(
      'part X|shared X',
    );
    expect(await renderFile('{% import "macros.j2" as m %}{{ m.m(1) }}')).toBe('macro 1');
    expect(await renderFile('{% extends "layout.j2" %}{% block body %}b{% endblock %}')).toBe(
      'layout b',
    );
    // A symlink that stays inside the bundle is fine.
    await symlink(join(bundleDir, 'part.j2'), join(bundleDir, 'alias.j2'));
    expect(await renderFile('{% include "alias.j2" %}')).toBe('part X');
  });

  const hostile: [string, string, RegExp][] = [
    ['include with ..', '{% include "../../outside.j2" %}', /lies outside the bundle/],
    ['include of a sibling bundle', '{% include "../other.j2" %}', /lies outside the bundle/],
    ['import with ..', '{% import "../../outside.j2" as o %}', /lies outside the bundle/],
    ['extends with ..', '{% extends "../../outside.j2" %}', /lies outside the bundle/],
    [
      'include with .. inside the name',
      '{% include "sub/../../../outside.j2" %}',
      /climbs out with \.\./,
    ],
    ['absolute include', '{% include "/etc/passwd" %}', /lies outside the bundle/],
    [
      'relative ./.. include',
      '{% include "./../../outside.j2" %}',
      /outside the bundle|climbs out/,
    ],
  ];
  for (const [what, source, message] of hostile) {
    it(`refuses ${what}`, async () => {
      let error: unknown;
      let output: string | undefined;
      try {
        output = await renderFile(source);
      } catch (e) {
        error = e;
      }
      expect(output).toBeUndefined();
      expect(error).toMatchObject({ code: 'TEMPLATE_ERROR' });
      expect(String((error as Error).message)).toMatch(message);
      expect(String((error as Error).message)).not.toContain(SECRET);
    });
  }

  it('refuses a symlink in the bundle that points outside it', async () => {
    await symlink(join(repo, 'outside.j2'), join(bundleDir, 'evil.j2'));
    await expect(renderFile('{% include "evil.j2" %}')).rejects.toMatchObject({
      code: 'TEMPLATE_ERROR',
      message: expect.stringMatching(/"evil\.j2" resolves to .*outside\.j2, outside the bundle/),
    });
  });

  it('refuses a symlinked directory in templates/ that points outside it', async () => {
    await mkdir(join(repo, 'elsewhere'));
    await writeFile(join(repo, 'elsewhere/x.j2'), SECRET);
    await symlink(join(repo, 'elsewhere'), join(templatesDir, 'linked'));
    await expect(renderFile('{% include "linked/x.j2" %}')).rejects.toMatchObject({
      code: 'TEMPLATE_ERROR',
      message: expect.stringMatching(/resolves to .*elsewhere\/x\.j2, outside templates\//),
    });
  });

  it('refuses a unit template listed in bundle.yaml that is a symlink out, writing no bundle', async () => {
    await writeBundleDir(bundleDir, {
      'bundle.yaml':
        'name: demo\nneeds: { users: [root] }\nfiles:\n  quadlet: [quadlet/demo.container.j2]\n',
    });
    await mkdir(join(bundleDir, 'quadlet'));
    await writeFile(
      join(repo, 'outside.container'),
      `[Container]\nImage=docker.io/x:1\n# ${SECRET}\n`,
    );
    await symlink(join(repo, 'outside.container'), join(bundleDir, 'quadlet/demo.container.j2'));
    const out = join(repo, 'out');
    const result = await runBundleCli([
      'build',
      bundleDir,
      '--version',
      '1.0.0',
      '--out',
      out,
      '--installer',
      await writeTestInstaller(repo),
      '--no-quadlet-check',
    ]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      /error TEMPLATE_ERROR: template ".*demo\.container\.j2" resolves to/,
    );
    await expect(readdir(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
