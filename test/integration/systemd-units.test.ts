/**
 * installer/systemd/: the timer and service pass `systemd-analyze verify`
 * (against a scratch root holding the system's own units and a stand-in for
 * /usr/local/bin/rick-install), and carry the settings the fleet relies on.
 * Without systemd-analyze the check is skipped, except under CI=true.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  ACTIVATION_LIMIT_SEC,
  UPDATE_SERVICE_TIMEOUT_SEC,
} from '../../src/bundle/activation-budget.js';
import { TMPFILES_ROOTS } from '../../src/bundle/tmpfiles.js';
import { repoRoot } from '../helpers/host-tree.js';

const run = promisify(execFile);
const units = ['rick-update.timer', 'rick-update.service'];
const systemUnitDir = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) =>
  existsSync(join(d, 'sysinit.target')),
);
const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));

async function unitSettings(unit: string): Promise<Map<string, string[]>> {
  const text = await readFile(join(repoRoot, 'installer/systemd', unit), 'utf8');
  const settings = new Map<string, string[]>();
  let section = '';
  for (const line of text.split('\n')) {
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) section = header[1] ?? '';
    const kv = /^(\w+)=(.*)$/.exec(line);
    if (kv) {
      const key = `${section}.${kv[1]}`;
      settings.set(key, [...(settings.get(key) ?? []), kv[2] ?? '']);
    }
  }
  return settings;
}

describe('timer and service units', () => {
  it('pass systemd-analyze verify', async () => {
    if (!analyze || !systemUnitDir) {
      expect(process.env.CI, 'systemd-analyze is required under CI=true').not.toBe('true');
      return;
    }
    const root = await mkdtemp(join(tmpdir(), 'rick-units-'));
    try {
      await mkdir(join(root, 'usr/lib/systemd'), { recursive: true });
      await cp(systemUnitDir, join(root, 'usr/lib/systemd/system'), { recursive: true });
      await mkdir(join(root, 'etc/systemd/system'), { recursive: true });
      await mkdir(join(root, 'usr/local/bin'), { recursive: true });
      await writeFile(join(root, 'usr/local/bin/rick-install'), '#!/bin/sh\n', { mode: 0o755 });
      for (const unit of units) {
        await cp(join(repoRoot, 'installer/systemd', unit), join(root, 'etc/systemd/system', unit));
      }
      const r = await run(analyze, [
        'verify',
        `--root=${root}`,
        ...units.map((u) => `/etc/systemd/system/${u}`),
      ]).catch((e: { code: number; stdout: string; stderr: string }) => e);
      // Unknown keys and bad values are only warnings: any output is a failure.
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('');
      expect('code' in r ? r.code : 0).toBe(0);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('spread a fleet over time and catch up after downtime', async () => {
    const timer = await unitSettings('rick-update.timer');
    expect(timer.get('Timer.OnBootSec')).toEqual(['5min']);
    expect(timer.get('Timer.OnCalendar')).toEqual(['hourly']);
    expect(timer.get('Timer.RandomizedDelaySec')).toEqual(['1h']);
    expect(timer.get('Timer.Persistent')).toEqual(['true']);
    expect(timer.get('Install.WantedBy')).toEqual(['timers.target']);
  });

  it('run one hardened update that may write only where an install writes', async () => {
    const service = await unitSettings('rick-update.service');
    expect(service.get('Service.Type')).toEqual(['oneshot']);
    expect(service.get('Service.ExecStart')).toEqual(['/usr/local/bin/rick-install update']);
    expect(service.get('Service.ProtectSystem')).toEqual(['strict']);
    expect(service.get('Service.ReadWritePaths')).toEqual([
      '/etc /var/lib /var/cache /var/log /srv /run',
      '-/var/lib/prometheus/node-exporter',
    ]);
    // Whatever a bundle's tmpfiles.d may create, the timer's install can create too.
    const writable = (service.get('Service.ReadWritePaths') ?? [])
      .flatMap((line) => line.split(/\s+/))
      .map((path) => path.replace(/^-/, ''));
    for (const root of TMPFILES_ROOTS) {
      expect(
        writable.some((path) => root.startsWith(`${path}/`)),
        `${root} is writable for rick-update.service`,
      ).toBe(true);
    }
    for (const key of ['NoNewPrivileges', 'PrivateTmp', 'ProtectHome', 'PrivateDevices']) {
      expect(service.get(`Service.${key}`)).toEqual(['yes']);
    }
  });

  it('waits for the synchronised clock it reads, ordered after time-sync.target without pulling it in', async () => {
    const service = await unitSettings('rick-update.service');
    expect(service.get('Unit.After')).toEqual(['network-online.target time-sync.target']);
    expect(service.get('Unit.Wants')).toEqual(['network-online.target']);
  });

  it('gives an activation and the restore after it time to finish before the run is stopped', async () => {
    const service = await unitSettings('rick-update.service');
    // The builder and the installer read UPDATE_SERVICE_TIMEOUT_SEC; it is this unit's timeout.
    expect(service.get('Service.TimeoutStartSec')).toEqual([
      `${UPDATE_SERVICE_TIMEOUT_SEC / 3600}h`,
    ]);
    expect(2 * ACTIVATION_LIMIT_SEC).toBeLessThan(UPDATE_SERVICE_TIMEOUT_SEC);
  });
});
