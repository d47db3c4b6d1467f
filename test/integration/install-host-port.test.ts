import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { RickError } from '../../src/errors.js';
import { httpStatus, pullImageWith, realHost, systemctlOn } from '../../src/host/system.js';
import type { CommandRunner, RunResult } from '../../src/io/exec.js';

function recordingRunner(
  answer: (cmd: string, args: readonly string[]) => Partial<RunResult> = () => ({}),
) {
  const calls: string[][] = [];
  const runner: CommandRunner = {
    run: async (cmd, args, options) => {
      calls.push([cmd, ...args]);
      options?.onStderr?.(Buffer.from(`${cmd} ${args[0]} output\n`));
      return { code: 0, signal: null, stdout: '', stderr: '', ...answer(cmd, args) };
    },
  };
  return { runner, calls };
}

describe('the real host port, at the process edge', () => {
  it('queues the restart of every unit in one systemctl transaction without blocking, and reads unit state with its restart counter and job', async () => {
    const { runner, calls } = recordingRunner((_, args) =>
      args[0] === 'show'
        ? {
            stdout:
              args.at(-1) === 'b.service'
                ? 'ActiveState=activating\nMainPID=0\nNRestarts=3\nJob=4711\n'
                : 'ActiveState=active\nMainPID=4242\nNRestarts=0\nJob=\n',
          }
        : {},
    );
    const systemctl = systemctlOn(runner);
    await systemctl.restart(['a.service', 'b.service', 'c.service']);
    await systemctl.restart([]);
    await systemctl.stop(['old.service']);
    await systemctl.daemonReload();
    expect(await systemctl.state('a.service')).toEqual({
      activeState: 'active',
      mainPid: 4242,
      nRestarts: 0,
      job: undefined,
    });
    expect(await systemctl.state('b.service')).toEqual({
      activeState: 'activating',
      mainPid: 0,
      nRestarts: 3,
      job: 4711,
    });
    const show = '--property=ActiveState,MainPID,NRestarts,Job';
    expect(calls).toEqual([
      ['systemctl', 'restart', '--no-block', '--', 'a.service', 'b.service', 'c.service'],
      ['systemctl', 'show', show, '--', 'old.service'],
      ['systemctl', 'stop', '--', 'old.service'],
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'show', show, '--', 'a.service'],
      ['systemctl', 'show', show, '--', 'b.service'],
    ]);
  });

  it('stops only units that are not inactive: a removed unit that is not running is not loaded, and stopping it would fail', async () => {
    const { runner, calls } = recordingRunner((_, args) => {
      if (args[0] === 'show') {
        return {
          stdout: `ActiveState=${args.at(-1) === 'gone.service' ? 'inactive' : 'failed'}\nMainPID=0\n`,
        };
      }
      if (args[0] === 'stop' && args.includes('gone.service')) {
        return { code: 5, stderr: 'Failed to stop gone.service: Unit gone.service not loaded.\n' };
      }
      return {};
    });
    const systemctl = systemctlOn(runner);
    await systemctl.stop(['gone.service', 'crashed.service']);
    await systemctl.stop(['gone.service']);
    expect(calls.filter((c) => c[1] === 'stop')).toEqual([
      ['systemctl', 'stop', '--', 'crashed.service'],
    ]);
  });

  it('reports a failing systemctl with its message, and reads journal lines', async () => {
    const { runner } = recordingRunner((cmd) =>
      cmd === 'systemctl'
        ? {
            // What `--no-block` still reports: a transaction systemd refuses.
            code: 5,
            stderr: 'Failed to restart a.service: Unit a.service not found.\n',
          }
        : { stdout: '-- Boot 1 --\n2026-01-01T00:00:00+0000 host a[1]: boom\n' },
    );
    const systemctl = systemctlOn(runner);
    await expect(systemctl.restart(['a.service'])).rejects.toThrow(
      'systemctl restart --no-block -- a.service failed (exit 5): Failed to restart a.service: Unit a.service not found.',
    );
    expect(await systemctl.journal('a.service', 5)).toEqual([
      '2026-01-01T00:00:00+0000 host a[1]: boom',
    ]);
  });

  it('--root mode: no systemctl, sysusers/tmpfiles with --root=DIR, skipped with a note when not installed', async () => {
    const { runner, calls } = recordingRunner((cmd) =>
      cmd === 'systemd-tmpfiles' ? { code: 127 } : {},
    );
    const host = realHost({ root: '/img', runner });
    expect(host.systemctl).toBeUndefined();
    expect(await host.podmanVersion()).toBeUndefined();
    expect(await host.applySysusers(['/tmp/x.conf'])).toBeUndefined();
    expect(await host.applyTmpfiles(['/tmp/y.conf'])).toMatch(
      /systemd-tmpfiles is not installed: skipped 1 fragment/,
    );
    expect(calls).toEqual([
      ['systemd-sysusers', '--root=/img', '/tmp/x.conf'],
      ['systemd-tmpfiles', '--root=/img', '--create', '/tmp/y.conf'],
    ]);
  });

  it('on a live host reads podman --version and refuses a failing sysusers', async () => {
    const { runner } = recordingRunner((cmd) =>
      cmd === 'podman'
        ? { stdout: 'podman version 5.4.2\n' }
        : { code: 1, stderr: 'Failed to parse line\n' },
    );
    const host = realHost({ runner });
    expect(host.systemctl).toBeDefined();
    expect(await host.podmanVersion()).toBe('5.4.2');
    await expect(host.applySysusers(['/tmp/x.conf'])).rejects.toThrow(
      'systemd-sysusers failed (exit 1): Failed to parse line',
    );
  });

  it('probes loopback HTTP and reports no answer as undefined', async () => {
    const server = createServer((req, res) => {
      res.statusCode = req.url === '/ok' ? 200 : 503;
      res.end('x');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    try {
      expect(await httpStatus(`http://127.0.0.1:${port}/ok`, 2000)).toBe(200);
      expect(await httpStatus(`http://127.0.0.1:${port}/down`, 2000)).toBe(503);
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(await httpStatus(`http://127.0.0.1:${port}/ok`, 2000)).toBeUndefined();
  });

  it('decides on the status line of a server that trickles its body a byte every 300 ms, without waiting for the body', async () => {
    let bytes = 0;
    const server = createServer((_, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      // Node sends the headers with the first body chunk unless flushed.
      res.flushHeaders();
      const timer = setInterval(() => {
        bytes++;
        res.write('.');
      }, 300);
      res.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    try {
      // The deadline would cut the attempt off after 60 s; the status line
      // answers it before the first byte of the body.
      expect(await httpStatus(`http://127.0.0.1:${port}/trickle`, 60_000)).toBe(200);
      expect(bytes).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it("gives up on a server that accepts the connection but never sends its headers, at the attempt's one deadline", async () => {
    const server = createServer(() => {
      // Never answers: no status line, no headers.
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    let connected = false;
    server.on('connection', () => {
      connected = true;
    });
    try {
      expect(await httpStatus(`http://127.0.0.1:${port}/silent`, 300)).toBeUndefined();
      expect(connected).toBe(true);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  describe("image pulls as podman's pull policy", () => {
    /** What podman 5.4.2 printed on the test host for a registry that was not there. */
    const failedPull = {
      code: 125,
      stderr: [
        'Trying to pull localhost/authentik-standin:9.9.9...',
        'time="2026-12-02T02:21:53Z" level=warning msg="Failed, retrying in 1s ... (1/3). Error: initializing source docker://localhost/authentik-standin:9.9.9: pinging container registry localhost: Get \\"https://localhost/v2/\\": dial tcp [::1]:443: connect: connection refused"',
        'Error: initializing source docker://localhost/authentik-standin:9.9.9: pinging container registry localhost: Get "https://localhost/v2/": dial tcp [::1]:443: connect: connection refused',
        '',
      ].join('\n'),
    };
    const need = (policy: 'always' | 'missing' | 'newer', options: string[] = []) => ({
      image: 'localhost/authentik-standin:9.9.9',
      policy,
      options,
      source: 'Image=',
    });

    it('missing: pulls only an absent image; always: pulls without asking; options before the image', async () => {
      const present = recordingRunner();
      expect(await pullImageWith(present.runner)(need('missing'))).toBe('present');
      expect(present.calls).toEqual([
        ['podman', 'image', 'exists', 'localhost/authentik-standin:9.9.9'],
      ]);

      const absent = recordingRunner((_, args) => (args[0] === 'image' ? { code: 1 } : {}));
      const seen: string[] = [];
      const pull = pullImageWith(absent.runner, (chunk) => seen.push(chunk.toString()));
      expect(await pull(need('missing'))).toBe('pulled');
      expect(await pull(need('always', ['--authfile', '/etc/auth.json']))).toBe('pulled');
      expect(absent.calls).toEqual([
        ['podman', 'image', 'exists', 'localhost/authentik-standin:9.9.9'],
        ['podman', 'pull', 'localhost/authentik-standin:9.9.9'],
        ['podman', 'pull', '--authfile', '/etc/auth.json', 'localhost/authentik-standin:9.9.9'],
      ]);
      // podman's own output reaches the terminal only for the pulls.
      expect(seen).toEqual(['podman pull output\n', 'podman pull output\n']);
    });

    it("a failed pull is IMAGE_PULL_FAILED with podman's error line; newer keeps a present image", async () => {
      const failing = recordingRunner((_, args) =>
        args[0] === 'image' ? { code: 1 } : failedPull,
      );
      const error = await pullImageWith(failing.runner)(need('missing')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RickError);
      expect((error as RickError).code).toBe('IMAGE_PULL_FAILED');
      expect((error as RickError).message).toBe(
        'cannot pull image localhost/authentik-standin:9.9.9: initializing source docker://localhost/authentik-standin:9.9.9: pinging container registry localhost: Get "https://localhost/v2/": dial tcp [::1]:443: connect: connection refused',
      );
      expect((error as RickError).hint).toContain('nothing was changed');

      const newer = recordingRunner((_, args) => (args[0] === 'image' ? {} : failedPull));
      expect(await pullImageWith(newer.runner)(need('newer'))).toBe('kept');
      await expect(pullImageWith(newer.runner)(need('always'))).rejects.toThrow(
        'cannot pull image localhost/authentik-standin:9.9.9',
      );
    });
  });
});
