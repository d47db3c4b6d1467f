/**
 * The host as rick-install sees it across the process edge: systemctl, the
 * journal, podman's version and image pulls, systemd-sysusers/systemd-tmpfiles,
 * loopback HTTP probes, the clock, and the user/group database. Everything else (files,
 * tar, gpgv) is real in every test; only this port is faked
 * (test/helpers/fake-host.ts).
 *
 * `--root DIR` mode is a Host without systemctl: nothing is started or
 * stopped, sysusers/tmpfiles run with `--root=DIR` (or are skipped with a
 * note when not installed), and accounts come from DIR/etc.
 */

import { RickError } from '../errors.js';
import { type CommandRunner, type RunResult, realCommandRunner } from '../io/exec.js';
import type { ImageNeed } from './activation/units.js';
import { type Accounts, fileAccounts, getentAccounts } from './intake/accounts.js';
import { parsePodmanVersion } from './prerequisites.js';

/**
 * The unit state the health gate needs (`systemctl show -p
 * ActiveState,MainPID,NRestarts,Job`; systemctl prints `Job=N` while a job
 * is queued or running, and `Job=` or nothing once none is).
 */
export interface UnitState {
  /** systemd's ActiveState: active, activating, failed, inactive, … */
  activeState: string;
  /** The main PID, 0 when none. */
  mainPid: number;
  /**
   * How often systemd restarted the unit by itself (Restart=): the counter
   * grows at each automatic restart, an explicit start or restart does not.
   */
  nRestarts: number;
  /** The id of the job queued or running for the unit, undefined when none. */
  job: number | undefined;
}

export interface Systemctl {
  daemonReload(): Promise<void>;
  /**
   * `systemctl reset-failed`: forgets the units' failed state and their start
   * rate limit. A unit that crash-looped past StartLimitBurst refuses even an
   * explicit start ("Start request repeated too quickly") until the interval
   * passes, so a restore that restarts it must reset it first. Best effort:
   * a unit systemd does not know has nothing to reset.
   */
  resetFailed(units: readonly string[]): Promise<void>;
  /**
   * Queues a restart (a start, when inactive) of every unit in ONE systemd
   * transaction, `systemctl restart --no-block`: it returns once the jobs
   * are queued, and fails only when systemd refuses the transaction. A
   * blocking restart would wait as long as the units' TimeoutStartSec=,
   * outside any deadline of rick's; the caller waits for the jobs
   * (UnitState.job) within its own.
   */
  restart(units: readonly string[]): Promise<void>;
  start(units: readonly string[]): Promise<void>;
  stop(units: readonly string[]): Promise<void>;
  /** Reloads running units (Caddy re-reading its sites), without restarting them. */
  reload(units: readonly string[]): Promise<void>;
  state(unit: string): Promise<UnitState>;
  /** The unit's last journal lines, oldest first (empty when unavailable). */
  journal(unit: string, lines: number): Promise<string[]>;
}

export interface Clock {
  /** The wall clock: for what is recorded and compared with other hosts (times, expiry). */
  now(): Date;
  /**
   * Milliseconds on a monotonic clock, from an arbitrary origin: for every
   * deadline and duration. An NTP step moves the wall clock, never this one.
   */
  monotonicMs(): number;
  sleep(ms: number): Promise<void>;
}

export interface Host {
  /** `/` on a live host, DIR with `--root DIR`. */
  readonly root: string;
  /** Undefined with `--root`: an offline tree has no service manager. */
  readonly systemctl: Systemctl | undefined;
  readonly accounts: Accounts;
  readonly clock: Clock;
  /** Podman's version (e.g. `5.4.2`), undefined when podman is not installed. */
  podmanVersion(): Promise<string | undefined>;
  /**
   * Applies sysusers.d fragments (absolute paths). Returns a note for the
   * operator when the step was skipped.
   */
  applySysusers(fragments: readonly string[]): Promise<string | undefined>;
  /** Applies tmpfiles.d fragments with `--create`; same contract as applySysusers. */
  applyTmpfiles(fragments: readonly string[]): Promise<string | undefined>;
  /**
   * GETs a loopback URL, with `host` as its Host header when given (a check
   * through the host's Caddy); resolves with the status of the response's
   * status line (the body is not waited for), or undefined when no response
   * headers came within `timeoutMs`, which bounds the whole attempt.
   */
  httpStatus(url: string, timeoutMs: number, host?: string): Promise<number | undefined>;
  /**
   * Makes an image present as podman's pull policy would when the unit
   * starts: `missing` pulls only an absent image, `always` pulls, `newer`
   * pulls and keeps a present image when the registry cannot be asked.
   * `podman pull` reads the registry auth file itself (REGISTRY_AUTH_FILE,
   * /run/containers/0/auth.json, …). Throws IMAGE_PULL_FAILED with podman's
   * error.
   */
  pullImage(need: ImageNeed): Promise<PullOutcome>;
  /**
   * Runs psql and setpriv for the declared databases and the pre-flight
   * (src/host/database/, src/host/preflight.ts); absent offline, and in a
   * fake host that has no PostgreSQL.
   */
  readonly databaseClients?: CommandRunner;
}

/** What pullImage did: pulled it, found it present, or kept a present one the registry could not confirm. */
export type PullOutcome = 'pulled' | 'present' | 'kept';

/** The line podman ends a failed command with (`Error: …`), else its last line. */
export function podmanError(result: RunResult): string {
  const lines = `${result.stderr}\n${result.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const error = lines.filter((l) => l.startsWith('Error: ')).at(-1);
  return (error ?? lines.at(-1) ?? `exit ${result.code}`).replace(/^Error: /, '');
}

/** Pulls can be large: an hour before podman is given up on. */
const PULL_TIMEOUT_MS = 3_600_000;

export function pullImageWith(
  runner: CommandRunner,
  progress?: (chunk: Buffer) => void,
): (need: ImageNeed) => Promise<PullOutcome> {
  return async (need) => {
    let present = false;
    if (need.policy !== 'always') {
      const exists = await runner.run('podman', ['image', 'exists', need.image], {
        timeoutMs: 60_000,
      });
      present = exists.code === 0;
      if (present && need.policy === 'missing') return 'present';
    }
    const result = await runner.run('podman', ['pull', ...need.options, need.image], {
      timeoutMs: PULL_TIMEOUT_MS,
      ...(progress ? { onStderr: progress } : {}),
    });
    if (result.code === 0) return 'pulled';
    if (need.policy === 'newer' && present) return 'kept';
    throw new RickError(
      'IMAGE_PULL_FAILED',
      `cannot pull image ${need.image}: ${result.code === 127 && result.startError ? `podman cannot be run (${result.startError})` : podmanError(result)}`,
      {
        hint: 'nothing was changed; check the image name, the registry and its credentials (podman reads REGISTRY_AUTH_FILE or /run/containers/0/auth.json), then run the install again (the update timer retries at its next tick)',
      },
    );
  };
}

export const realClock: Clock = {
  now: () => new Date(),
  // CLOCK_MONOTONIC underneath: neither NTP steps nor `date -s` move it.
  monotonicMs: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

function commandFailed(what: string, result: RunResult): RickError {
  const detail = (result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ');
  return new RickError(
    'IO_ERROR',
    `${what} failed (${result.signal ?? `exit ${result.code}`})${detail ? `: ${detail}` : ''}`,
  );
}

export function systemctlOn(runner: CommandRunner): Systemctl {
  const systemctl = async (args: string[]) => {
    const result = await runner.run('systemctl', args);
    if (result.code !== 0) throw commandFailed(`systemctl ${args.join(' ')}`, result);
    return result.stdout;
  };
  const state = async (unit: string): Promise<UnitState> => {
    const out = await systemctl([
      'show',
      '--property=ActiveState,MainPID,NRestarts,Job',
      '--',
      unit,
    ]);
    const props = new Map(
      out
        .split('\n')
        .map((line) => line.split('=', 2) as [string, string | undefined])
        .filter((pair): pair is [string, string] => pair[1] !== undefined),
    );
    return {
      activeState: props.get('ActiveState') ?? 'unknown',
      mainPid: Number(props.get('MainPID') ?? 0) || 0,
      nRestarts: Number(props.get('NRestarts') ?? 0) || 0,
      // `Job=` is empty (or left out) when no job is queued for the unit.
      job: Number(props.get('Job') ?? 0) || undefined,
    };
  };
  return {
    daemonReload: async () => {
      await systemctl(['daemon-reload']);
    },
    resetFailed: async (units) => {
      if (units.length) await runner.run('systemctl', ['reset-failed', '--', ...units]);
    },
    restart: async (units) => {
      if (units.length) await systemctl(['restart', '--no-block', '--', ...units]);
    },
    start: async (units) => {
      if (units.length) await systemctl(['start', '--', ...units]);
    },
    reload: async (units) => {
      if (units.length) await systemctl(['reload', '--', ...units]);
    },
    stop: async (units) => {
      // An inactive unit is stopped already. After a daemon-reload a removed
      // unit that is not running is not loaded any more, and `systemctl stop`
      // would fail on it ("Unit … not loaded"), failing a rollback for nothing.
      const running: string[] = [];
      for (const unit of units) {
        if ((await state(unit)).activeState !== 'inactive') running.push(unit);
      }
      if (running.length) await systemctl(['stop', '--', ...running]);
    },
    state,
    journal: async (unit, lines) => {
      const result = await runner.run('journalctl', [
        '--no-pager',
        '--output=short-iso',
        '-n',
        String(lines),
        '-u',
        unit,
      ]);
      if (result.code !== 0) return [];
      return result.stdout.split('\n').filter((l) => l.length > 0 && !l.startsWith('-- '));
    },
  };
}

/**
 * GETs `url` and resolves with the status of the response's status line, or
 * undefined when no response headers came within `timeoutMs`. The status
 * line decides: the body is not waited for, so a server that trickles its
 * body (or streams forever) cannot hold the gate, and `timeoutMs` bounds the
 * whole attempt, connect included, not the time between two bytes.
 */
export async function httpStatus(
  url: string,
  timeoutMs: number,
  host?: string,
): Promise<number | undefined> {
  // Loaded here: only a health gate on a live host needs it, and every run of
  // the installer would otherwise load Node's HTTP client at start.
  const { request } = await import('node:http');
  return new Promise((resolve) => {
    const headers = host === undefined ? {} : { host };
    // No keep-alive: the socket is dropped with the unread body.
    const req = request(url, { method: 'GET', headers, agent: false }, (res) => {
      clearTimeout(timer);
      resolve(res.statusCode);
      res.destroy();
    });
    const timer = setTimeout(() => req.destroy(new Error('timeout')), timeoutMs);
    req.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    req.end();
  });
}

export interface RealHostOptions {
  /** `--root DIR`; absent on a live host. */
  root?: string;
  runner?: CommandRunner;
  clock?: Clock;
  /** Receives podman's pull output as it comes (the CLI passes its terminal). */
  pullProgress?: (chunk: Buffer) => void;
}

/** The host rick-install runs on, or an offline tree with `--root`. */
export function realHost(options: RealHostOptions = {}): Host {
  const runner = options.runner ?? realCommandRunner;
  const root = options.root;
  const offline = root !== undefined;
  const rootArgs = offline ? [`--root=${root}`] : [];
  const tool = async (
    program: string,
    args: string[],
    fragments: readonly string[],
  ): Promise<string | undefined> => {
    if (fragments.length === 0) return undefined;
    const result = await runner.run(program, [...rootArgs, ...args, ...fragments]);
    if (result.code === 127 && offline) {
      return `${program} is not installed: skipped ${fragments.length} fragment(s); apply them when the image boots`;
    }
    if (result.code !== 0) throw commandFailed(program, result);
    return undefined;
  };
  return {
    root: root ?? '/',
    systemctl: offline ? undefined : systemctlOn(runner),
    accounts: offline ? fileAccounts(root) : getentAccounts(runner),
    clock: options.clock ?? realClock,
    podmanVersion: async () => {
      // An image tree's podman cannot be asked; the running machine's is irrelevant.
      if (offline) return undefined;
      const result = await runner.run('podman', ['--version'], { timeoutMs: 30_000 });
      if (result.code !== 0) return undefined;
      return parsePodmanVersion(result.stdout) ?? result.stdout.trim();
    },
    applySysusers: (fragments) => tool('systemd-sysusers', [], fragments),
    applyTmpfiles: (fragments) => tool('systemd-tmpfiles', ['--create'], fragments),
    httpStatus,
    pullImage: offline
      ? async () => {
          throw new RickError('INTERNAL', 'an offline tree (--root) pulls no images');
        }
      : pullImageWith(runner, options.pullProgress),
    ...(offline ? {} : { databaseClients: runner }),
  };
}
