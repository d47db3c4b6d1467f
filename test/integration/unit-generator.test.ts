/**
 * The rick-units generator, run as systemd runs it (`rick-units NORMAL EARLY
 * LATE`) over a generation on disk: it links the live generation's plain
 * units and the wants/requires links of their [Install] sections, reads
 * `current` once, ignores a target that is not a unit name, and finds
 * nothing to do before the first generation. shellcheck judges the script.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UNIT_GENERATOR_SCRIPT } from '../../src/host/unit-generator.js';

const run = promisify(execFile);

let dir: string;
let script: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rick-generator-'));
  script = join(dir, 'rick-units');
  await writeFile(script, UNIT_GENERATOR_SCRIPT, { mode: 0o755 });
  await mkdir(join(dir, 'out'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function generate(): Promise<{ code: number; stderr: string }> {
  try {
    const r = await run(script, [join(dir, 'out'), join(dir, 'early'), join(dir, 'late')], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', RICK_STATE_DIR: join(dir, 'state') },
    });
    return { code: 0, stderr: r.stderr };
  } catch (error) {
    const e = error as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

async function listOut(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const name of (await readdir(join(dir, 'out', rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const target = await readlink(join(dir, 'out', path)).catch(() => undefined);
      if (target === undefined) await walk(path);
      else out.push(`${path} -> ${target}`);
    }
  };
  await walk('');
  return out;
}

describe('the rick-units generator', () => {
  it('passes shellcheck', async () => {
    const shellcheck = await run('shellcheck', [script]).then(
      () => 'ok',
      (error: { stdout?: string; code?: string | number }) =>
        error.code === 'ENOENT' ? 'missing' : (error.stdout ?? 'failed'),
    );
    if (shellcheck === 'missing') {
      expect(process.env.CI, 'shellcheck is required under CI=true').not.toBe('true');
      return;
    }
    expect(shellcheck).toBe('ok');
  });

  it('does nothing before the first generation', async () => {
    expect(await generate()).toEqual({ code: 0, stderr: '' });
    expect(await listOut()).toEqual([]);
  });

  it('links the live generation’s units and their [Install] targets, and nothing of other generations', async () => {
    const gen = (n: number) => join(dir, 'state/generations', String(n), 'systemd');
    await mkdir(join(gen(1), 'old'), { recursive: true });
    await writeFile(join(gen(1), 'old/old.service'), '[Service]\nExecStart=/bin/true\n');
    await mkdir(join(gen(2), 'demo'), { recursive: true });
    await mkdir(join(gen(2), 'other'), { recursive: true });
    await writeFile(
      join(gen(2), 'demo/demo-fix.service'),
      '[Service]\nType=oneshot\nExecStart=/bin/true\n\n[Install]\nWantedBy=demo-app.service multi-user.target\nRequiredBy=demo.target\n',
    );
    await writeFile(
      join(gen(2), 'other/backup.timer'),
      '[Timer]\nOnCalendar=daily\n\n[Install]\n WantedBy = timers.target\n',
    );
    await writeFile(join(gen(2), 'other/backup.service'), '[Service]\nExecStart=/bin/true\n');
    await writeFile(join(gen(2), 'other/notes.txt'), 'not a unit\n');
    await symlink('generations/2', join(dir, 'state/current'));

    expect(await generate()).toEqual({ code: 0, stderr: '' });
    const live = join(dir, 'state/generations/2/systemd');
    expect(await listOut()).toEqual([
      `backup.service -> ${live}/other/backup.service`,
      `backup.timer -> ${live}/other/backup.timer`,
      `demo-app.service.wants/demo-fix.service -> ${live}/demo/demo-fix.service`,
      `demo-fix.service -> ${live}/demo/demo-fix.service`,
      `demo.target.requires/demo-fix.service -> ${live}/demo/demo-fix.service`,
      `multi-user.target.wants/demo-fix.service -> ${live}/demo/demo-fix.service`,
      `timers.target.wants/backup.timer -> ${live}/other/backup.timer`,
    ]);
  });

  it('ignores an [Install] target that is not a unit name, and says so', async () => {
    const units = join(dir, 'state/generations/1/systemd/demo');
    await mkdir(units, { recursive: true });
    await writeFile(
      join(units, 'x.service'),
      '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=../../escape *\n',
    );
    await symlink('generations/1', join(dir, 'state/current'));
    const r = await generate();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('WantedBy=../../escape is not a unit name; ignored');
    expect(r.stderr).toContain('WantedBy=* is not a unit name; ignored');
    expect(await listOut()).toEqual([`x.service -> ${units}/x.service`]);
  });
});
