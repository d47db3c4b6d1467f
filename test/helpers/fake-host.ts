/**
 * A fake Host for installer tests: the process edge only (systemctl, the
 * journal, podman's version and pulls, sysusers/tmpfiles runs, HTTP probes,
 * the clock). Files stay real. Accounts come from the test tree's etc/
 * (fileAccounts), as in --root mode, so tests set up groups by writing
 * etc/group.
 *
 * Its systemctl models what systemd and podman do with the units podman's
 * real quadlet generates from the live generation (read at each
 * daemon-reload, as systemd runs its generators), as recorded on the test
 * host (test/e2e) and read in systemd's transaction.c:
 *
 * - `systemctl restart a b` queues one transaction per unit, all before any
 *   job runs; a restart restarts the running units that have Requires=,
 *   Requisite=, BindsTo= or PartOf= on it and starts the inactive units it
 *   Requires=, BindsTo= or Wants=; a start of a running unit is dropped;
 * - stops run first; then podman stops a pod created with
 *   `--exit-policy=stop` whose last container stopped, and systemd stops
 *   what is bound to a unit that went inactive;
 * - starts run in After= order; a unit whose Requires=/BindsTo= unit is not
 *   active fails with result "dependency" and stays inactive, with the
 *   journal lines systemd writes;
 * - systemctl fails when a job it queued itself fails, not for the jobs
 *   those brought in.
 *
 * Its systemd-sysusers writes etc/passwd and etc/group of the tree as
 * systemd-sysusers 252 does for the lines a bundle may use (emulateSysusers).
 *
 * - `systemctl restart --no-block` (the port's restart) returns once the
 *   jobs are queued: the stops run at once, each started unit shows
 *   `activating` with `Job=` set until its start is done (at once, or after
 *   the unit's startDelays entry), and the job's failure shows only in the
 *   unit's state and journal, as systemctl reports nothing for it;
 * - a unit with Restart=always whose process exits (crashLoop): ActiveState
 *   `activating` (auto-restart) for RestartSec=100ms, then `active` with a
 *   new MainPID and NRestarts one higher, "Scheduled restart job, restart
 *   counter is at N." in its journal; past the default start limit (5
 *   starts within 10 s) it ends `failed` with result 'start-limit-hit'.
 *   An explicit restart sets NRestarts back to 0, as systemd's service.c
 *   does (a stop that is no automatic restart sets flush_n_restarts, and
 *   the next start clears the counter); the gate compares with its first
 *   sample and does not rely on it.
 *
 * It records every call and can be told that a unit never becomes active,
 * crash-loops, takes a while to start, that an HTTP check never answers
 * 2xx, or that an image cannot be pulled. Its clock advances on sleep
 * (wall and monotonic together; parallel sleeps overlap), so a health gate
 * with a 120 s timeout fails instantly; a test steps the wall clock alone
 * (stepWallClock) or runs something at a point in time (at).
 */
import { readlinkSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runQuadletDryRun } from '../../src/bundle/quadlet.js';
import { RickError } from '../../src/errors.js';
import type { ImageNeed, UnitGraph } from '../../src/host/activation/units.js';
import { parseUnitGraph, withPlainUnits } from '../../src/host/activation/units.js';
import { fileAccounts } from '../../src/host/intake/accounts.js';
import {
  type Clock,
  type Host,
  type PullOutcome,
  httpStatus as realHttpStatus,
  type Systemctl,
  type UnitState,
} from '../../src/host/system.js';
import { quadletPath } from './quadlet.js';

export interface FakeHostOptions {
  root: string;
  /** Without systemctl, like `--root` mode. Default false (a live host). */
  offline?: boolean;
  podmanVersion?: string | undefined;
}

export type FakeCall =
  | { op: 'daemon-reload' }
  | { op: 'restart' | 'start' | 'stop' | 'reload'; units: string[] }
  | { op: 'sysusers' | 'tmpfiles'; fragments: string[]; contents: string[] }
  | { op: 'http'; url: string; host?: string }
  | { op: 'pull'; image: string; policy: string; options: string[] };

type JobType = 'start' | 'stop' | 'restart';

/** systemd's defaults: RestartSec=100ms, StartLimitIntervalSec=10s, StartLimitBurst=5. */
const RESTART_SEC_MS = 100;
const START_LIMIT_INTERVAL_MS = 10_000;
const START_LIMIT_BURST = 5;

/** A unit whose main process exits `everyMs` after each start (Restart=always brings it back). */
interface CrashLoop {
  everyMs: number;
  /** Only while this generation is live; always when undefined. */
  whileGeneration: number | undefined;
  /** What the process writes before it exits. */
  lines: string[];
}

interface LoopState {
  nextCrashMs: number;
  /** Auto-restart pending until then (ActiveState=activating, MainPID=0). */
  restartingUntilMs: number | undefined;
}

/** Jobs queued by one `systemctl restart --no-block`, done at `dueMs`. */
interface PendingTransaction {
  id: number;
  dueMs: number;
  jobs: Map<string, JobType>;
}

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
  /** Units that end up inactive rather than failed when they fail. */
  readonly inactiveOnFailure = new Set<string>();
  /** URLs that never answer 2xx (`url`, or `url host` for a check with a Host header). */
  readonly failingUrls = new Set<string>();
  /** Checks go to real loopback servers through the real probe (system.ts httpStatus). */
  realHttp = false;
  /** When set, `systemctl reload` of these units fails (a reload Caddy refuses). */
  readonly failingReloads = new Set<string>();
  /**
   * Called on `systemctl reload` before it is recorded: an integration test
   * puts a real `caddy reload` here.
   */
  onReload: ((units: readonly string[]) => Promise<void>) | undefined;
  /** When set, systemd-tmpfiles fails with this error (after a short while, as a process would). */
  tmpfilesError: Error | undefined;
  /** Units active now, with their main PID (a restart gives a new one). */
  readonly active = new Map<string, number>();
  /**
   * Monotonic times of each unit's recent starts, explicit and automatic:
   * systemd's start rate limit counts both, and refuses an explicit start too
   * once StartLimitBurst starts fell within StartLimitIntervalSec, until the
   * interval passes or `reset-failed`.
   */
  private readonly recentStarts = new Map<string, number[]>();
  /** systemd's NRestarts of each unit (automatic restarts since the last explicit start). */
  readonly nRestarts = new Map<string, number>();
  /**
   * Units whose start takes this long (ms of the fake clock), always or while
   * the given generation is live: their job stays queued meanwhile.
   */
  readonly startDelays = new Map<string, { ms: number; whileGeneration?: number }>();
  /** Units that crash-loop (crashLoop()). */
  readonly crashLoops = new Map<string, CrashLoop>();
  private readonly loops = new Map<string, LoopState>();
  private readonly pending: PendingTransaction[] = [];
  private nextJob = 100;
  private readonly timers: Array<{ atMs: number; run: () => void }> = [];
  /** Units whose last start failed (ActiveState=failed). */
  readonly failed = new Set<string>();
  /** Journal lines returned for a unit that has none of its own. */
  journalLines = ['fake: main process exited, code=exited, status=1/FAILURE'];
  /** Lines the fake systemd wrote for each unit. */
  readonly unitJournal = new Map<string, string[]>();
  /** Makes daemon-reload fail from the given call number on (1-based), to break a rollback. */
  failDaemonReloadFrom: number | undefined;
  podman: string | undefined;
  /** Images present in podman's store. */
  readonly images = new Set<string>();
  /** Images whose pull fails, with podman's error line. */
  readonly failingImages = new Map<string, string>();
  /** The generated units systemd has loaded (since the last daemon-reload). */
  units: UnitGraph = new Map();
  private readonly startMs = Date.parse('2026-01-01T00:00:00Z');
  private nowMs = this.startMs;
  /** The monotonic clock: from 0, moved by sleeps only, never by stepWallClock. */
  private monoMs = 0;
  private nextPid = 1000;
  private reloads = 0;

  constructor(options: FakeHostOptions) {
    this.root = options.root;
    this.podman = 'podmanVersion' in options ? options.podmanVersion : '5.4.2';
    this.accounts = fileAccounts(options.root);
    this.clock = {
      now: () => new Date(this.nowMs),
      monotonicMs: () => this.monoMs,
      sleep: async (ms) => {
        // Sleeps begun in the same turn (services gated in parallel) end at
        // the same time, as on a real clock, rather than one after another.
        const wake = this.monoMs + ms;
        await new Promise((resolve) => setImmediate(resolve));
        if (wake > this.monoMs) this.advance(wake - this.monoMs);
      },
    };
    this.systemctl = options.offline ? undefined : this.makeSystemctl();
  }

  private write(unit: string, line: string): void {
    const lines = this.unitJournal.get(unit) ?? [];
    lines.push(`fake systemd[1]: ${line}`);
    this.unitJournal.set(unit, lines);
  }

  private dependents(unit: string): string[] {
    return [...this.units.values()]
      .filter(
        (n) =>
          n.requires.includes(unit) ||
          n.requisite.includes(unit) ||
          n.bindsTo.includes(unit) ||
          n.partOf.includes(unit),
      )
      .map((n) => n.name);
  }

  /** One transaction, as systemd builds it when the job is queued. */
  private addJob(jobs: Map<string, JobType>, unit: string, type: JobType): void {
    const existing = jobs.get(unit);
    if (existing !== undefined) {
      if (existing !== type && existing !== 'stop' && type !== 'stop') jobs.set(unit, 'restart');
      return;
    }
    jobs.set(unit, type);
    const node = this.units.get(unit);
    if (type !== 'stop') {
      for (const d of [
        ...(node?.requires ?? []),
        ...(node?.bindsTo ?? []),
        ...(node?.wants ?? []),
      ]) {
        // A start job for a running unit is redundant: systemd drops it.
        if (!this.active.has(d) && this.units.has(d)) this.addJob(jobs, d, 'start');
      }
    }
    if (type !== 'start') {
      for (const d of this.dependents(unit)) {
        if (this.active.has(d)) this.addJob(jobs, d, type === 'restart' ? 'restart' : 'stop');
      }
    }
  }

  private stopUnit(unit: string, why?: string): void {
    // A stop ends an auto-restart pending too.
    this.loops.delete(unit);
    if (!this.active.has(unit)) return;
    this.active.delete(unit);
    this.write(unit, why ?? `Stopped ${unit}.`);
  }

  /** podman's --exit-policy=stop, then systemd's BindsTo= on units that went inactive. */
  private settle(activeBefore: ReadonlySet<string>): void {
    for (let again = true; again; ) {
      again = false;
      for (const pod of this.units.values()) {
        if (pod.kind !== 'pod' || pod.exitPolicy !== 'stop' || !this.active.has(pod.name)) continue;
        const members = [...this.units.values()].filter((n) => n.bindsTo.includes(pod.name));
        const hadOne = members.some((m) => activeBefore.has(m.name));
        if (hadOne && !members.some((m) => this.active.has(m.name))) {
          this.stopUnit(
            pod.name,
            `${pod.name}: Main process exited, code=exited, status=0/SUCCESS (podman: last container of the pod exited, --exit-policy=stop)`,
          );
          again = true;
        }
      }
      for (const node of this.units.values()) {
        if (!this.active.has(node.name)) continue;
        const gone = node.bindsTo.find((b) => this.units.has(b) && !this.active.has(b));
        if (gone) {
          this.stopUnit(
            node.name,
            `${node.name}: Unit is bound to inactive unit ${gone}. Stopping, too.`,
          );
          again = true;
        }
      }
    }
  }

  /** Runs the queued jobs: stops, the pods' exit policy, then starts in After= order. */
  private run(jobs: Map<string, JobType>): Set<string> {
    this.runStops(jobs);
    return this.runStarts(jobs);
  }

  private runStops(jobs: Map<string, JobType>): void {
    const activeBefore = new Set(this.active.keys());
    for (const [unit, type] of jobs) if (type !== 'start') this.stopUnit(unit);
    this.settle(activeBefore);
  }

  private runStarts(jobs: Map<string, JobType>): Set<string> {
    const starts = [...jobs].filter(([, t]) => t !== 'stop').map(([u]) => u);
    const order: string[] = [];
    const visit = (unit: string, path: Set<string>) => {
      if (order.includes(unit) || path.has(unit)) return;
      path.add(unit);
      for (const a of this.units.get(unit)?.after ?? []) if (starts.includes(a)) visit(a, path);
      order.push(unit);
    };
    for (const unit of starts.sort()) visit(unit, new Set());
    const failedJobs = new Set<string>();
    for (const unit of order) {
      const node = this.units.get(unit);
      const missing = [...(node?.requires ?? []), ...(node?.bindsTo ?? [])].find(
        (d) => this.units.has(d) && !this.active.has(d),
      );
      if (missing) {
        if (node?.bindsTo.includes(missing)) {
          this.write(unit, `${unit}: Bound to unit ${missing}, but unit isn't active.`);
        }
        this.write(unit, `Dependency failed for ${unit}.`);
        this.write(unit, `${unit}: Job ${unit}/start failed with result 'dependency'.`);
        failedJobs.add(unit);
        continue;
      }
      if (this.fails(unit)) {
        this.active.delete(unit);
        if (!this.inactiveOnFailure.has(unit)) this.failed.add(unit);
        // What the service itself wrote before it failed.
        this.unitJournal.set(unit, [...(this.unitJournal.get(unit) ?? []), ...this.journalLines]);
        failedJobs.add(unit);
        continue;
      }
      if (this.startLimitHit(unit)) {
        this.active.delete(unit);
        this.failed.add(unit);
        this.write(unit, `${unit}: Start request repeated too quickly.`);
        this.write(unit, `${unit}: Failed with result 'start-limit-hit'.`);
        failedJobs.add(unit);
        continue;
      }
      this.failed.delete(unit);
      // An explicit start: systemd counts automatic restarts from here.
      this.nRestarts.set(unit, 0);
      this.active.set(unit, this.nextPid++);
      this.write(unit, `Started ${unit}.`);
      const loop = this.crashLoops.get(unit);
      if (loop && this.whileLive(loop.whileGeneration ?? 'always')) {
        this.loops.set(unit, {
          nextCrashMs: this.monoMs + loop.everyMs,
          restartingUntilMs: undefined,
        });
      }
    }
    return failedJobs;
  }

  /** The next thing due on the clock at or before `limitMs`, if any. */
  private nextEvent(limitMs: number): { atMs: number; run: () => void } | undefined {
    let best: { atMs: number; run: () => void } | undefined;
    const consider = (atMs: number, run: () => void) => {
      if (atMs <= limitMs && (best === undefined || atMs < best.atMs)) best = { atMs, run };
    };
    for (const timer of this.timers) {
      consider(timer.atMs, () => {
        this.timers.splice(this.timers.indexOf(timer), 1);
        timer.run();
      });
    }
    for (const txn of this.pending) {
      consider(txn.dueMs, () => {
        this.pending.splice(this.pending.indexOf(txn), 1);
        this.runStarts(txn.jobs);
      });
    }
    for (const [unit, loop] of this.loops) {
      if (loop.restartingUntilMs !== undefined) {
        consider(loop.restartingUntilMs, () => this.autoRestart(unit, loop));
      } else consider(loop.nextCrashMs, () => this.crash(unit, loop));
    }
    return best;
  }

  /** Moves both clocks forward, running what falls due on the way, in time order. */
  private advance(ms: number): void {
    const target = this.monoMs + ms;
    for (let e = this.nextEvent(target); e; e = this.nextEvent(target)) {
      this.nowMs += Math.max(0, e.atMs - this.monoMs);
      this.monoMs = Math.max(this.monoMs, e.atMs);
      e.run();
    }
    this.nowMs += target - this.monoMs;
    this.monoMs = target;
  }

  /** What is due now (a transaction queued with no start delay). */
  private catchUp(): void {
    this.advance(0);
  }

  private crash(unit: string, loop: LoopState): void {
    const crashLoop = this.crashLoops.get(unit);
    if (!this.active.has(unit) || !crashLoop) {
      this.loops.delete(unit);
      return;
    }
    this.active.delete(unit);
    this.unitJournal.set(unit, [...(this.unitJournal.get(unit) ?? []), ...crashLoop.lines]);
    this.write(unit, `${unit}: Main process exited, code=exited, status=1/FAILURE`);
    this.write(unit, `${unit}: Failed with result 'exit-code'.`);
    loop.restartingUntilMs = this.monoMs + RESTART_SEC_MS;
  }

  /** Records a start now, unless the unit's start rate limit refuses it (true). */
  private startLimitHit(unit: string): boolean {
    const recent = (this.recentStarts.get(unit) ?? []).filter(
      (t) => this.monoMs - t < START_LIMIT_INTERVAL_MS,
    );
    if (recent.length >= START_LIMIT_BURST) return true;
    recent.push(this.monoMs);
    this.recentStarts.set(unit, recent);
    return false;
  }

  private autoRestart(unit: string, loop: LoopState): void {
    loop.restartingUntilMs = undefined;
    const n = (this.nRestarts.get(unit) ?? 0) + 1;
    this.nRestarts.set(unit, n);
    this.write(unit, `${unit}: Scheduled restart job, restart counter is at ${n}.`);
    if (this.startLimitHit(unit)) {
      this.loops.delete(unit);
      this.failed.add(unit);
      this.write(unit, `${unit}: Start request repeated too quickly.`);
      this.write(unit, `${unit}: Failed with result 'start-limit-hit'.`);
      return;
    }
    this.active.set(unit, this.nextPid++);
    this.write(unit, `Started ${unit}.`);
    loop.nextCrashMs = this.monoMs + (this.crashLoops.get(unit)?.everyMs ?? 1000);
  }

  /**
   * A new job for a unit replaces the one still queued for it (systemd merges
   * a restart into a pending start; a stop cancels it).
   */
  private supersede(units: Iterable<string>): void {
    for (const unit of units) for (const txn of this.pending) txn.jobs.delete(unit);
    for (const txn of [...this.pending]) {
      if (txn.jobs.size === 0) this.pending.splice(this.pending.indexOf(txn), 1);
    }
  }

  /** The job queued for a unit, if any. */
  private jobOf(unit: string): number | undefined {
    for (const txn of this.pending) {
      const units = [...txn.jobs.keys()];
      const type = txn.jobs.get(unit);
      if (type !== undefined && type !== 'stop') return txn.id + units.indexOf(unit);
    }
    return undefined;
  }

  private async loadUnits(): Promise<void> {
    const dir = join(this.root, 'var/lib/rick/current/quadlet');
    if (!quadletPath) {
      this.units = new Map();
      return;
    }
    try {
      readlinkSync(join(this.root, 'var/lib/rick/current'));
    } catch {
      this.units = new Map();
      return;
    }
    const result = await runQuadletDryRun(dir, { quadletPath });
    // And the plain units, as the rick-units generator shows them to systemd.
    const plain: Array<{ name: string; text: string }> = [];
    const units = join(this.root, 'var/lib/rick/current/systemd');
    for (const bundle of await readdir(units).catch(() => [] as string[])) {
      for (const name of await readdir(join(units, bundle))) {
        plain.push({ name, text: await readFile(join(units, bundle, name), 'utf8') });
      }
    }
    this.units = withPlainUnits(parseUnitGraph(result.generated), plain);
  }

  private makeSystemctl(): Systemctl {
    const queue = (units: readonly string[], type: JobType) => {
      const jobs = new Map<string, JobType>();
      for (const unit of units) this.addJob(jobs, unit, type);
      return jobs;
    };
    const report = (units: readonly string[], failedJobs: ReadonlySet<string>) => {
      // Like systemctl: it waits for the jobs it queued, not for those they brought in.
      const failed = units.find((u) => failedJobs.has(u));
      if (!failed) return;
      const dependency = !this.fails(failed);
      throw new Error(
        dependency
          ? `A dependency job for ${failed} failed. See 'journalctl -xe' for details.`
          : `Job for ${failed} failed because the control process exited with error code.`,
      );
    };
    return {
      daemonReload: async () => {
        this.catchUp();
        this.reloads++;
        this.calls.push({ op: 'daemon-reload' });
        if (this.failDaemonReloadFrom !== undefined && this.reloads >= this.failDaemonReloadFrom) {
          throw new Error('fake: daemon-reload failed');
        }
        await this.loadUnits();
      },
      // systemd forgets the failed state and the start rate limit.
      resetFailed: async (units) => {
        this.catchUp();
        for (const unit of units) {
          this.failed.delete(unit);
          this.recentStarts.delete(unit);
        }
      },
      // `systemctl restart --no-block`: the jobs are queued, the stops run,
      // the starts complete later; systemctl itself reports nothing of them.
      restart: async (units) => {
        if (units.length === 0) return;
        this.catchUp();
        this.calls.push({ op: 'restart', units: [...units] });
        const jobs = queue(units, 'restart');
        this.supersede(jobs.keys());
        this.runStops(jobs);
        const delays = [...jobs]
          .filter(([, t]) => t !== 'stop')
          .map(([u]) => {
            const delay = this.startDelays.get(u);
            return delay && this.whileLive(delay.whileGeneration ?? 'always') ? delay.ms : 0;
          });
        this.pending.push({
          id: this.nextJob,
          dueMs: this.monoMs + Math.max(0, ...delays),
          jobs,
        });
        this.nextJob += jobs.size;
      },
      start: async (units) => {
        if (units.length === 0) return;
        this.catchUp();
        this.calls.push({ op: 'start', units: [...units] });
        report(units, this.run(queue(units, 'start')));
      },
      reload: async (units) => {
        if (units.length === 0) return;
        this.catchUp();
        this.calls.push({ op: 'reload', units: [...units] });
        const failed = units.filter((u) => this.failingReloads.has(u));
        if (failed.length) {
          throw new Error(
            `Job for ${failed[0]} failed because the control process exited with error code.`,
          );
        }
        await this.onReload?.(units);
      },
      stop: async (units) => {
        if (units.length === 0) return;
        this.catchUp();
        this.calls.push({ op: 'stop', units: [...units] });
        const jobs = queue(units, 'stop');
        this.supersede(jobs.keys());
        this.run(jobs);
      },
      state: async (unit): Promise<UnitState> => {
        this.catchUp();
        const nRestarts = this.nRestarts.get(unit) ?? 0;
        const job = this.jobOf(unit);
        const pid = this.active.get(unit);
        if (pid !== undefined) return { activeState: 'active', mainPid: pid, nRestarts, job };
        if (job !== undefined || this.loops.get(unit)?.restartingUntilMs !== undefined) {
          return { activeState: 'activating', mainPid: 0, nRestarts, job };
        }
        const activeState = this.failed.has(unit) ? 'failed' : 'inactive';
        return { activeState, mainPid: 0, nRestarts, job };
      },
      journal: async (unit, lines) => {
        this.catchUp();
        return (this.unitJournal.get(unit) ?? this.journalLines).slice(-lines);
      },
    };
  }

  /** Makes a unit fail, always or while the given generation is live. */
  failUnit(unit: string, whileGeneration?: number, endsAs: 'failed' | 'inactive' = 'failed'): void {
    this.failingUnits.set(unit, whileGeneration ?? 'always');
    if (endsAs === 'inactive') this.inactiveOnFailure.add(unit);
  }

  /**
   * Makes a unit's main process exit `everyMs` after each start (a container
   * whose command fails at once), always or while the given generation is
   * live; Restart=always brings it back, as systemd does.
   */
  crashLoop(
    unit: string,
    options: { everyMs: number; whileGeneration?: number; lines?: string[] },
  ): void {
    this.crashLoops.set(unit, {
      everyMs: options.everyMs,
      whileGeneration: options.whileGeneration,
      lines: options.lines ?? [],
    });
  }

  /** Runs `fn` once the monotonic clock reaches `elapsedMs` (e.g. to step the wall clock mid-gate). */
  at(elapsedMs: number, fn: () => void): void {
    this.timers.push({ atMs: elapsedMs, run: fn });
  }

  /** Steps the wall clock alone, as NTP or `date -s` does; the monotonic clock does not move. */
  stepWallClock(ms: number): void {
    this.nowMs += ms;
  }

  /** Time the monotonic clock has advanced, in milliseconds. */
  get elapsedMs(): number {
    return this.monoMs;
  }

  private fails(unit: string): boolean {
    const when = this.failingUnits.get(unit);
    if (when === undefined) return false;
    return this.whileLive(when);
  }

  private whileLive(when: number | 'always'): boolean {
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
    await emulateSysusers(this.root, contents.join('\n'));
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

  async pullImage(need: ImageNeed): Promise<PullOutcome> {
    this.calls.push({
      op: 'pull',
      image: need.image,
      policy: need.policy,
      options: [...need.options],
    });
    const present = this.images.has(need.image);
    if (present && need.policy === 'missing') return 'present';
    const error = this.failingImages.get(need.image);
    if (error !== undefined) {
      if (present && need.policy === 'newer') return 'kept';
      throw new RickError('IMAGE_PULL_FAILED', `cannot pull image ${need.image}: ${error}`);
    }
    this.images.add(need.image);
    return 'pulled';
  }

  /** The pulls, for assertions. */
  pulls(): string[] {
    return this.calls.flatMap((c) => (c.op === 'pull' ? [c.image] : []));
  }

  async httpStatus(url: string, timeoutMs: number, host?: string): Promise<number | undefined> {
    this.calls.push(host === undefined ? { op: 'http', url } : { op: 'http', url, host });
    if (this.realHttp) return realHttpStatus(url, timeoutMs, host);
    const key = host === undefined ? url : `${url} ${host}`;
    return this.failingUrls.has(key) ? 503 : 200;
  }

  /** The service-manager calls only (restart/start/stop/daemon-reload), for assertions. */
  serviceCalls(): FakeCall[] {
    return this.calls.filter((c) =>
      ['daemon-reload', 'restart', 'start', 'stop', 'reload'].includes(c.op),
    );
  }

  reset(): void {
    this.calls.length = 0;
    this.reloads = 0;
    this.unitJournal.clear();
  }
}

/**
 * What systemd-sysusers 252 does to DIR/etc/passwd and DIR/etc/group for
 * `u NAME ID`, `u NAME -:GROUP`, `g NAME ID` and `m USER GROUP` lines, as
 * observed with `systemd-sysusers --root=DIR`: existing accounts are left
 * alone; ids are allocated downwards from 999, a numeric id is taken when
 * free (a user's id counts as taken when a group holds it too); a user
 * without a named primary group gets the group of its name (created with
 * the user's id when that is free).
 */
export async function emulateSysusers(root: string, text: string): Promise<void> {
  const groupFile = join(root, 'etc/group');
  const passwdFile = join(root, 'etc/passwd');
  const read = async (f: string) =>
    (await readFile(f, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
  const groups = (await read(groupFile)).map((l) => l.split(':'));
  const users = (await read(passwdFile)).map((l) => l.split(':'));
  const gids = () => new Set(groups.map((g) => Number(g[2])));
  const uids = () => new Set(users.map((u) => Number(u[2])));
  const free = (taken: Set<number>, wish?: number) => {
    if (wish !== undefined && !taken.has(wish)) return wish;
    for (let id = 999; id > 0; id--) if (!taken.has(id)) return id;
    throw new Error('fake sysusers: no free id');
  };
  const group = (name: string) => groups.find((g) => g[0] === name);
  for (const line of text.split('\n')) {
    const fields = [...line.trim().matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');
    const [type, name = '', id = '-', gecos = '', home = '/'] = fields;
    if (!type || type.startsWith('#')) continue;
    const wish = /^[0-9]+$/.test(id) ? Number(id) : undefined;
    if (type === 'g' && !group(name)) {
      groups.push([name, 'x', String(free(gids(), wish)), '']);
    } else if (type === 'u' && !users.some((u) => u[0] === name)) {
      const named = id.includes(':') ? id.slice(id.indexOf(':') + 1) : undefined;
      const uidWish = /^[0-9]+/.test(id) ? Number.parseInt(id, 10) : undefined;
      const uid = free(new Set([...uids(), ...gids()]), uidWish);
      let primary = group(named ?? name);
      if (!primary && named !== undefined) continue;
      if (!primary) {
        primary = [name, 'x', String(free(gids(), uid)), ''];
        groups.push(primary);
      }
      users.push([name, 'x', String(uid), String(primary[2]), gecos, home, '/usr/sbin/nologin']);
    } else if (type === 'm') {
      const g = group(id);
      const members = g?.[3] ? g[3].split(',') : [];
      if (g && !members.includes(name)) g[3] = [...members, name].join(',');
    }
  }
  await writeFile(groupFile, `${groups.map((g) => g.join(':')).join('\n')}\n`);
  await writeFile(passwdFile, `${users.map((u) => u.join(':')).join('\n')}\n`);
}
