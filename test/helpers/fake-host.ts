/**
 * A fake Host for installer tests: the process edge only (systemctl, the
 * journal, podman's version, sysusers/tmpfiles runs, HTTP probes, the clock).
 * Files stay real. Accounts come from the test tree's etc/ (fileAccounts), as
 * in --root mode, so tests set up groups by writing etc/group.
 *
 * It records every call and can be told that a unit never becomes active or
 * that an HTTP check never answers 2xx. Its clock advances on sleep, so a
 * health gate with a 120 s timeout fails instantly.
 */
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileAccounts } from '../../src/host/intake/accounts.js';
import type { Clock, Host, Systemctl, UnitState } from '../../src/host/system.js';

export interface FakeHostOptions {
  root: string;
  /** Without systemctl, like `--root` mode. Default false (a live host). */
  offline?: boolean;
  podmanVersion?: string | undefined;
}

export type FakeCall =
  | { op: 'daemon-reload' }
  | { op: 'restart' | 'start' | 'stop'; units: string[] }
  | { op: 'sysusers' | 'tmpfiles'; fragments: string[]; contents: string[] }
  | { op: 'http'; url: string };

export class FakeHost implements Host {
  readonly root: string;
  readonly systemctl: Systemctl | undefined;
  readonly accounts;
  readonly clock: Clock;
  readonly calls: FakeCall[] = [];
  /**
   * Units that never reach `active` (they end `failed`): always, or only while
   * `current` points at the given generation (a unit broken by one release).
   */
  readonly failingUnits = new Map<string, number | 'always'>();
  /** Units that end up inactive rather than failed, like a start failed through a dependency. */
  readonly inactiveOnFailure = new Set<string>();
  /** URLs that never answer 2xx. */
  readonly failingUrls = new Set<string>();
  /** When set, systemd-tmpfiles fails with this error (after a short while, as a process would). */
  tmpfilesError: Error | undefined;
  /** Units active now, with their main PID (a restart gives a new one). */
  readonly active = new Map<string, number>();
  /** Journal lines returned for any unit. */
  journalLines = ['fake: main process exited, code=exited, status=1/FAILURE'];
  /** Makes daemon-reload fail from the given call number on (1-based), to break a rollback. */
  failDaemonReloadFrom: number | undefined;
  podman: string | undefined;
  private readonly startMs = Date.parse('2026-01-01T00:00:00Z');
  private nowMs = this.startMs;
  private nextPid = 1000;
  private reloads = 0;

  constructor(options: FakeHostOptions) {
    this.root = options.root;
    this.podman = 'podmanVersion' in options ? options.podmanVersion : '5.4.2';
    this.accounts = fileAccounts(options.root);
    this.clock = {
      now: () => new Date(this.nowMs),
      sleep: async (ms) => {
        this.nowMs += ms;
      },
    };
    this.systemctl = options.offline ? undefined : this.makeSystemctl();
  }

  private makeSystemctl(): Systemctl {
    const activate = (units: readonly string[]) => {
      for (const u of units) {
        if (this.fails(u)) this.active.delete(u);
        else this.active.set(u, this.nextPid++);
      }
    };
    return {
      daemonReload: async () => {
        this.reloads++;
        this.calls.push({ op: 'daemon-reload' });
        if (this.failDaemonReloadFrom !== undefined && this.reloads >= this.failDaemonReloadFrom) {
          throw new Error('fake: daemon-reload failed');
        }
      },
      restart: async (units) => {
        if (units.length === 0) return;
        this.calls.push({ op: 'restart', units: [...units] });
        activate(units);
        // Like systemctl: a restart job whose unit fails to start fails the command.
        const failed = units.filter((u) => this.fails(u));
        if (failed.length) {
          throw new Error(
            `Job for ${failed[0]} failed because the control process exited with error code.`,
          );
        }
      },
      start: async (units) => {
        if (units.length === 0) return;
        this.calls.push({ op: 'start', units: [...units] });
        activate(units.filter((u) => !this.active.has(u)));
      },
      stop: async (units) => {
        if (units.length === 0) return;
        this.calls.push({ op: 'stop', units: [...units] });
        for (const u of units) this.active.delete(u);
      },
      state: async (unit): Promise<UnitState> => {
        const pid = this.active.get(unit);
        if (pid !== undefined) return { activeState: 'active', mainPid: pid };
        const failedState = this.inactiveOnFailure.has(unit) ? 'inactive' : 'failed';
        return { activeState: this.fails(unit) ? failedState : 'inactive', mainPid: 0 };
      },
      journal: async (_unit, lines) => this.journalLines.slice(-lines),
    };
  }

  /** Makes a unit fail, always or while the given generation is live. */
  failUnit(unit: string, whileGeneration?: number, endsAs: 'failed' | 'inactive' = 'failed'): void {
    this.failingUnits.set(unit, whileGeneration ?? 'always');
    if (endsAs === 'inactive') this.inactiveOnFailure.add(unit);
  }

  /** Logical time the fake clock has advanced, in milliseconds. */
  get elapsedMs(): number {
    return this.nowMs - this.startMs;
  }

  private fails(unit: string): boolean {
    const when = this.failingUnits.get(unit);
    if (when === undefined) return false;
    if (when === 'always') return true;
    try {
      return readlinkSync(join(this.root, 'var/lib/rick/current')) === `generations/${when}`;
    } catch {
      return false;
    }
  }

  async podmanVersion(): Promise<string | undefined> {
    return this.podman;
  }

  async applySysusers(fragments: readonly string[]): Promise<string | undefined> {
    const { readFile } = await import('node:fs/promises');
    const contents = await Promise.all(fragments.map((f) => readFile(f, 'utf8')));
    this.calls.push({ op: 'sysusers', fragments: [...fragments], contents });
    return undefined;
  }

  async applyTmpfiles(fragments: readonly string[]): Promise<string | undefined> {
    const { readFile } = await import('node:fs/promises');
    const contents = await Promise.all(fragments.map((f) => readFile(f, 'utf8')));
    this.calls.push({ op: 'tmpfiles', fragments: [...fragments], contents });
    if (this.tmpfilesError) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw this.tmpfilesError;
    }
    return undefined;
  }

  async httpStatus(url: string): Promise<number | undefined> {
    this.calls.push({ op: 'http', url });
    return this.failingUrls.has(url) ? 503 : 200;
  }

  /** The service-manager calls only (restart/start/stop/daemon-reload), for assertions. */
  serviceCalls(): FakeCall[] {
    return this.calls.filter((c) => ['daemon-reload', 'restart', 'start', 'stop'].includes(c.op));
  }

  reset(): void {
    this.calls.length = 0;
    this.reloads = 0;
  }
}
