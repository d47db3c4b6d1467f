/**
 * Activation: make a written generation live and prove it healthy, or put
 * the previous one back. Shared by install, rollback and crash recovery.
 *
 *   flip current → daemon-reload → stop removed units → `systemctl restart
 *   --no-block` the plan's jobs step by step, each step's jobs waited for
 *   (a pod's service for its containers, or a pod's containers one at a
 *   time, see plan.ts) → reload Caddy when a site changed → health gate
 *   over every service they restart (active, checks, settle period)
 *   on failure: flip back → daemon-reload → stop what the failed generation
 *   added → restart what differs back to the previous generation (the same
 *   planner, the two generations swapped) → reload Caddy when a site
 *   differs → gate it
 *
 * Every deadline is on the monotonic clock; the activation, and the restore
 * after it, each stop at ACTIVATION_LIMIT_SEC (docs/activation.md).
 *
 * With `--root` (no systemctl) activation is the flip alone.
 */

import { ACTIVATION_LIMIT_SEC, settleSecOf } from '../../bundle/activation-budget.js';
import type { Service } from '../../bundle/manifest.js';
import { describe, RickError } from '../../errors.js';
import { restoreDatabases } from '../database/provision.js';
import { checkpoint } from '../fault.js';
import { flipCurrent, type StoredGeneration } from '../generations.js';
import type { HostPaths } from '../paths.js';
import type { Host, UnitState } from '../system.js';
import { type ActivationPlan, planActivation, type UnitGraphs } from './plan.js';

export const JOURNAL_LINES = 20;

/** The manifest's default activeTimeoutSec, for a unit a step brings that is not a service. */
const DEFAULT_ACTIVE_TIMEOUT_SEC = 120;

export interface GateFailure {
  service: string;
  reason: string;
  journal: string[];
}

export interface ActivationContext {
  host: Host;
  paths: HostPaths;
  log: (line: string) => void;
  /**
   * Called right after each flip of `current`: `live` once the new
   * generation is live, `restoring` once the previous one is back (before
   * its services are). The intent record notes it (recovery.ts), so that a
   * run that dies after either flip is completed by the next one.
   */
  onFlip?: (phase: 'live' | 'restoring') => Promise<void>;
}

function servicesIn(generation: StoredGeneration | undefined): Map<string, Service> {
  const out = new Map<string, Service>();
  for (const b of generation?.bundles.values() ?? [])
    for (const s of b.services) out.set(s.service, s);
  return out;
}

/** How often the gate reads a unit's state. */
const POLL_MS = 1000;

/**
 * The point on the monotonic clock where an activation (or the restore
 * after it) gives up, whatever its services' own timeouts say: see
 * src/bundle/activation-budget.ts. Wall-clock steps (NTP, an RTC-less boot)
 * move neither this nor any deadline below.
 */
export interface ActivationDeadline {
  atMs: number;
  /**
   * When each unit's restart was queued: its activeTimeoutSec counts from
   * there, through its job and until it reads active, as the budget counts it.
   */
  queuedAt: Map<string, number>;
}

function activationDeadline(host: Host): ActivationDeadline {
  return { atMs: host.clock.monotonicMs() + ACTIVATION_LIMIT_SEC * 1000, queuedAt: new Map() };
}

/** `seconds` from now, but never past the activation's deadline. */
function within(host: Host, seconds: number, activation: ActivationDeadline): number {
  return Math.min(host.clock.monotonicMs() + seconds * 1000, activation.atMs);
}

function timedOut(host: Host, atMs: number): boolean {
  return host.clock.monotonicMs() >= atMs;
}

/** Why a wait ended at its deadline: the service's own timeout or the activation's limit. */
function timeoutWhy(atMs: number, activation: ActivationDeadline, own: string): string {
  return atMs >= activation.atMs ? `the activation's limit of ${ACTIVATION_LIMIT_SEC}s` : own;
}

/** Set once one service failed: the others stop waiting. */
interface GateRun {
  over: boolean;
}

const times = (n: number) => `${n} time${n === 1 ? '' : 's'}`;

/**
 * What the gate remembers of a service once it is active: a later sample
 * must show it active still, with the same main process and no automatic
 * restart since the first sample.
 */
interface Watch {
  name: string;
  baseline: number;
  mainPid: number;
}

function restarted(w: Pick<Watch, 'name' | 'baseline'>, s: UnitState): string | undefined {
  const n = s.nRestarts - w.baseline;
  if (n <= 0) return undefined;
  return `${w.name} restarted ${times(n)} during the gate (NRestarts=${s.nRestarts}, ActiveState=${s.activeState})`;
}

async function stillUp(host: Host, w: Watch): Promise<string | undefined> {
  const systemctl = host.systemctl!;
  let s = await systemctl.state(w.name);
  if (s.activeState !== 'active' && s.activeState !== 'failed' && s.job === undefined) {
    // Its process exited and systemd waits RestartSec= before it restarts
    // it (activating, auto-restart): one more sample names the restart.
    await host.clock.sleep(POLL_MS);
    s = await systemctl.state(w.name);
  }
  const again = restarted(w, s);
  if (again) return again;
  if (s.activeState !== 'active') {
    return `${w.name} stopped being active during the gate (ActiveState=${s.activeState}, MainPID was ${w.mainPid})`;
  }
  if (s.mainPid !== w.mainPid) {
    return `${w.name}'s main process changed during the gate (MainPID ${w.mainPid} → ${s.mainPid}) without a restart counted by systemd (NRestarts=${s.nRestarts}): something else restarted it`;
  }
  return undefined;
}

/**
 * Waits until the unit has no job left and is `active`, within its
 * activeTimeoutSec; an automatic restart on the way fails it.
 */
async function waitActive(
  host: Host,
  service: Service,
  activation: ActivationDeadline,
  run: GateRun,
): Promise<{ reason: string } | { watch: Watch } | undefined> {
  const systemctl = host.systemctl!;
  const name = service.service;
  const from = activation.queuedAt.get(name) ?? host.clock.monotonicMs();
  const atMs = Math.min(from + service.activeTimeoutSec * 1000, activation.atMs);
  let s = await systemctl.state(name);
  const baseline = s.nRestarts;
  for (;;) {
    const again = restarted({ name, baseline }, s);
    if (again) return { reason: again };
    // A queued or running job (a start still under way) is waited for; with
    // none, the unit's state is the outcome of its restart.
    if (s.job === undefined) {
      if (s.activeState === 'active') return { watch: { name, baseline, mainPid: s.mainPid } };
      if (s.activeState === 'failed') return { reason: `${name} failed (ActiveState=failed)` };
      // Its job is done, so a unit that is inactive now will not start by
      // itself: typically its start failed through a dependency (result
      // "dependency"), which never shows as failed. A crashed unit with
      // Restart= shows as activating and is waited for.
      if (s.activeState === 'inactive') {
        return { reason: `${name} is inactive after its restart (ActiveState=inactive)` };
      }
    }
    if (timedOut(host, atMs)) {
      const why = timeoutWhy(atMs, activation, `${service.activeTimeoutSec}s`);
      return {
        reason: `${name} did not become active within ${why} (ActiveState=${s.activeState}${s.job === undefined ? '' : `, job ${s.job} still queued`})`,
      };
    }
    if (run.over) return undefined;
    await host.clock.sleep(Math.min(POLL_MS, Math.max(1, atMs - host.clock.monotonicMs())));
    s = await systemctl.state(name);
  }
}

async function waitChecks(
  host: Host,
  service: Service,
  watch: Watch,
  activation: ActivationDeadline,
  run: GateRun,
): Promise<string | undefined> {
  for (const check of service.checks) {
    const atMs = within(host, check.timeoutSec, activation);
    let last: number | undefined;
    for (;;) {
      const remaining = atMs - host.clock.monotonicMs();
      // One deadline for the whole attempt, headers included: the status
      // line decides, the body is not waited for (system.ts httpStatus).
      last = await host.httpStatus(
        check.url,
        Math.max(100, Math.min(10_000, remaining)),
        check.host,
      );
      if (last !== undefined && last >= 200 && last < 300) break;
      const down = await stillUp(host, watch);
      if (down) return down;
      if (timedOut(host, atMs)) {
        const via = check.host === undefined ? '' : ` (Host: ${check.host})`;
        const why = timeoutWhy(atMs, activation, `${check.timeoutSec}s`);
        return `${service.service}: ${check.url}${via} did not answer 2xx within ${why} (last: ${last ?? 'no answer'})`;
      }
      if (run.over) return undefined;
      await host.clock.sleep(
        Math.min(check.intervalSec * 1000, Math.max(1, atMs - host.clock.monotonicMs())),
      );
    }
  }
  return undefined;
}

/**
 * The settle period: from the sample that first read `active`, the unit
 * stays active with the same MainPID and an unchanged NRestarts for
 * settleSec. With quadlet's defaults a container is `active` as soon as its
 * process starts, so a container that exits at start (and Restart= brings
 * back) reads `active` too; only a unit that stays up passes.
 */
async function settle(
  host: Host,
  service: Service,
  watch: Watch,
  sinceMs: number,
  activation: ActivationDeadline,
  run: GateRun,
): Promise<string | undefined> {
  const untilMs = sinceMs + settleSecOf(service) * 1000;
  for (;;) {
    const down = await stillUp(host, watch);
    if (down) return down;
    const now = host.clock.monotonicMs();
    if (now >= untilMs) return undefined;
    if (now >= activation.atMs) {
      return `${service.service} did not stay active for its settle period of ${settleSecOf(service)}s within the activation's limit of ${ACTIVATION_LIMIT_SEC}s`;
    }
    if (run.over) return undefined;
    await host.clock.sleep(Math.min(POLL_MS, untilMs - now, Math.max(1, activation.atMs - now)));
  }
}

async function gateService(
  host: Host,
  service: Service,
  activation: ActivationDeadline,
  run: GateRun,
): Promise<string | undefined> {
  const active = await waitActive(host, service, activation, run);
  if (active === undefined) return undefined;
  if ('reason' in active) return active.reason;
  const sinceMs = host.clock.monotonicMs();
  return (
    (await waitChecks(host, service, active.watch, activation, run)) ??
    (await settle(host, service, active.watch, sinceMs, activation, run))
  );
}

/**
 * Every service reaches `active` (its job done), answers its HTTP checks
 * with 2xx, and stays active for its settle period with the same main
 * process and no automatic restart, each within its timeouts and all within
 * the activation's deadline (monotonic). The first failure ends the gate.
 */
export async function healthGate(
  host: Host,
  services: readonly Service[],
  activation: ActivationDeadline = activationDeadline(host),
): Promise<GateFailure | undefined> {
  if (!host.systemctl || services.length === 0) return undefined;
  const run: GateRun = { over: false };
  const results = await Promise.all(
    services.map(async (s) => {
      const reason = await gateService(host, s, activation, run);
      if (reason) run.over = true;
      return reason ? { service: s.service, reason } : undefined;
    }),
  );
  const failed = results.find((r) => r !== undefined);
  if (!failed) return undefined;
  const journal = await host.systemctl.journal(failed.service, JOURNAL_LINES).catch(() => []);
  return { ...failed, journal };
}

/**
 * Reloads what the plan reloads (Caddy, after its sites changed). A reload
 * Caddy refuses keeps its old configuration running: that is a failure of
 * the new generation, named with the unit's journal.
 */
async function reloadUnits(host: Host, units: readonly string[]): Promise<GateFailure | undefined> {
  if (units.length === 0) return undefined;
  try {
    await host.systemctl!.reload(units);
    return undefined;
  } catch (error) {
    const unit = units.join(' ');
    const journal = await host.systemctl!.journal(units[0]!, JOURNAL_LINES).catch(() => []);
    return { service: unit, reason: `reload of ${unit} failed: ${describe(error)}`, journal };
  }
}

/**
 * Waits until no unit of a step has a job left: `systemctl restart
 * --no-block` returned once systemd queued them. The unit's `Job` property
 * is what a blocking `systemctl restart` waits on (the job's removal);
 * ActiveState alone cannot tell, as a unit whose restart is queued still
 * reads `active` with its old process until the job runs. Then the units
 * named to systemctl must be active or on their way (a Restart= unit
 * waiting to come back reads activating); failed or inactive, the step
 * failed, as a blocking restart would have reported.
 */
async function waitJobs(
  host: Host,
  named: readonly string[],
  units: readonly string[],
  atMs: number,
  why: () => string,
): Promise<{ error?: Error; timeout?: GateFailure }> {
  const systemctl = host.systemctl!;
  for (;;) {
    const states = await Promise.all(units.map((u) => systemctl.state(u)));
    const pending = units.filter((_, i) => states[i]!.job !== undefined);
    if (pending.length === 0) {
      const down = named.find((u) => {
        const s = states[units.indexOf(u)]!.activeState;
        return s === 'failed' || s === 'inactive';
      });
      if (down === undefined) return {};
      const s = states[units.indexOf(down)]!.activeState;
      return { error: new Error(`the restart job of ${down} ended with ActiveState=${s}`) };
    }
    if (timedOut(host, atMs)) {
      const unit = pending[0]!;
      const s = states[units.indexOf(unit)]!;
      const journal = await systemctl.journal(unit, JOURNAL_LINES).catch(() => []);
      return {
        timeout: {
          service: unit,
          reason: `${unit} still had job ${s.job} queued (ActiveState=${s.activeState}) after ${why()}`,
          journal,
        },
      };
    }
    await host.clock.sleep(Math.min(POLL_MS, Math.max(1, atMs - host.clock.monotonicMs())));
  }
}

/**
 * Runs a plan's restarts: one `systemctl restart --no-block` per step,
 * each after the jobs of the one before are done (waitJobs), within the
 * longest activeTimeoutSec of the step's services and the activation's
 * deadline. Returns the units handed to systemctl, in order, the error of
 * the step that failed, if any, and a gate failure when a job outlived its
 * deadline (the gate would only wait for it again).
 *
 * A container of a rolling restart (plan.ts) is restarted alone only while
 * another container of its pod is active: the plan assumes they all run,
 * but after a failed gate or a crash one may not (a failed server, while
 * the worker is restored). Restarting the last active one would empty the
 * pod and podman would stop it, so the pod's service is restarted instead,
 * with every container, and its remaining steps are left out.
 *
 * The first step that fails ends the run: the containers of a rolling
 * restart not restarted yet keep running as they are (the gate fails on the
 * one that failed, and the reverse plan puts back what differs).
 */
async function runSteps(
  host: Host,
  plan: ActivationPlan,
  log: (line: string) => void,
  services: ReadonlyMap<string, Service>,
  activation: ActivationDeadline,
): Promise<{ ran: string[][]; error?: unknown; timeout?: GateFailure }> {
  const systemctl = host.systemctl!;
  const ran: string[][] = [];
  const throughPod = new Set<string>();
  for (const step of plan.steps) {
    let units = step;
    let waitFor = [
      ...step,
      ...plan.jobs.filter((j) => step.includes(j.unit)).flatMap((j) => j.brings),
    ];
    const pod = plan.jobs.find((j) => j.unit === step[0])?.rollingPod;
    if (pod !== undefined) {
      if (throughPod.has(pod)) continue;
      const others = plan.jobs
        .filter((j) => j.rollingPod === pod && !step.includes(j.unit))
        .map((j) => j.unit);
      const states = await Promise.all(others.map((u) => systemctl.state(u)));
      if (!states.some((s) => s.activeState === 'active')) {
        const shown = others.map((u, i) => `${u} is ${states[i]!.activeState}`).join(', ');
        log(
          `${pod}: no other container of the pod is active (${shown}); restarting ${step.join(' ')} alone would empty it, so ${pod} restarts with all its containers`,
        );
        throughPod.add(pod);
        units = [pod];
        waitFor = [pod, ...plan.jobs.filter((j) => j.rollingPod === pod).map((j) => j.unit)];
      }
    }
    ran.push(units);
    const wait = [...new Set(waitFor)];
    for (const u of wait) activation.queuedAt.set(u, host.clock.monotonicMs());
    try {
      // A unit that crash-looped past its start limit (a failed release's,
      // put back here) refuses even this start until systemd forgets it.
      await systemctl.resetFailed(wait);
      await systemctl.restart(units);
    } catch (error) {
      return { ran, error };
    }
    const longest = Math.max(0, ...wait.map((u) => services.get(u)?.activeTimeoutSec ?? 0));
    const ownSec = longest || DEFAULT_ACTIVE_TIMEOUT_SEC;
    const atMs = within(host, ownSec, activation);
    const done = await waitJobs(host, units, wait, atMs, () =>
      timeoutWhy(atMs, activation, `${ownSec}s`),
    );
    if (done.timeout) return { ran, timeout: done.timeout };
    if (done.error) return { ran, error: done.error };
  }
  return { ran };
}

/** `a b`, or `a, then b, then c` for a rolling restart. */
function describeSteps(steps: readonly string[][]): string {
  return steps.map((s) => s.join(' ')).join(', then ');
}

/**
 * Applies a plan's service changes: stop removed, then restart the plan's
 * jobs, step by step. Returns what ran and the error of the restart, if
 * any: the health gate then names the unit.
 */
async function applyServices(
  host: Host,
  plan: ActivationPlan,
  log: (line: string) => void,
  services: ReadonlyMap<string, Service>,
  activation: ActivationDeadline,
): Promise<{ ran: string[][]; error?: unknown; timeout?: GateFailure }> {
  const systemctl = host.systemctl!;
  await systemctl.daemonReload();
  await checkpoint('daemon-reloaded');
  await systemctl.stop(plan.removed);
  const result = await runSteps(host, plan, log, services, activation);
  await checkpoint('restarted');
  return result;
}

export type ActivationOutcome =
  | { ok: true; plan: ActivationPlan }
  | {
      ok: false;
      plan: ActivationPlan;
      failure: GateFailure;
      /** The previous generation is live again and healthy. */
      restored: boolean;
      restoreError?: string;
    };

/**
 * Makes `to` live (from `from`, the live generation or none) and gates it;
 * on failure puts `from` back. Never throws for a failed gate: the caller
 * records the outcome and chooses the exit.
 */
export async function activate(
  ctx: ActivationContext,
  from: StoredGeneration | undefined,
  to: StoredGeneration,
  graphs: UnitGraphs = {},
  plan: ActivationPlan = planActivation(from, to, graphs),
): Promise<ActivationOutcome> {
  const { host, paths, log } = ctx;
  await flipCurrent(paths, to.generation);
  await ctx.onFlip?.('live');
  await checkpoint('flipped');
  log(`generation ${to.generation} is live`);
  if (!host.systemctl) {
    log('offline tree (--root): no services started or stopped');
    return { ok: true, plan };
  }
  let failure: GateFailure | undefined;
  const next = servicesIn(to);
  // One deadline for the restarts and the gate together (monotonic).
  const activation = activationDeadline(host);
  try {
    const {
      ran,
      error: restartError,
      timeout,
    } = await applyServices(host, plan, log, next, activation);
    if (plan.removed.length) log(`stopped ${plan.removed.join(' ')}`);
    if (plan.restart.length) {
      const brought = plan.restarted.filter((u) => !plan.restart.includes(u));
      log(
        `restarted ${describeSteps(ran)}${brought.length ? ` (with ${brought.join(' ')})` : ''}${restartError ? ` (${describe(restartError)})` : ''}`,
      );
    }
    failure = timeout ?? (await reloadUnits(host, plan.reload));
    if (plan.reload.length && !failure) log(`reloaded ${plan.reload.join(' ')}`);
    failure ??= await healthGate(
      host,
      plan.restarted.map((s) => next.get(s)).filter((s): s is Service => s !== undefined),
      activation,
    );
    if (!failure && restartError) {
      failure = { service: plan.restart.join(' '), reason: describe(restartError), journal: [] };
    }
  } catch (error) {
    failure = { service: plan.restart.join(' ') || '(none)', reason: describe(error), journal: [] };
  }
  await checkpoint('health-checked');
  if (!failure) return { ok: true, plan };
  log(`health gate failed: ${failure.reason}`);
  for (const line of failure.journal) log(`  ${line}`);
  try {
    await restore(ctx, to, from, { live: graphs.next, next: graphs.live });
    return { ok: false, plan, failure, restored: true };
  } catch (error) {
    return { ok: false, plan, failure, restored: false, restoreError: describe(error) };
  }
}

/**
 * Puts `back` live again after `failed` was activated (or partly activated),
 * and checks that what it restarted is healthy. Throws when that fails.
 * `graphs` are the generated units of `failed` (live) and `back` (next).
 */
export async function restore(
  ctx: ActivationContext,
  failed: StoredGeneration,
  back: StoredGeneration | undefined,
  graphs: UnitGraphs = {},
): Promise<void> {
  const { host, paths, log } = ctx;
  await flipCurrent(paths, back?.generation);
  await ctx.onFlip?.('restoring');
  log(back ? `generation ${back.generation} is live again` : 'no generation is live');
  if (!host.systemctl) return;
  // Its roles' passwords as it was rendered with, before its services restart.
  await restoreDatabases(ctx, back);
  const reverse = back ? planActivation(failed, back, graphs) : undefined;
  const stop = reverse ? reverse.removed : [...servicesIn(failed).keys()].sort();
  const previous = servicesIn(back);
  // The restore is bounded on its own: an activation and its restore each
  // fit in half of rick-update.service's run (activation-budget.ts).
  const activation = activationDeadline(host);
  await host.systemctl.daemonReload();
  await host.systemctl.stop(stop);
  // A failed restart shows in the gate below, which names the unit.
  const steps = reverse ? await runSteps(host, reverse, log, previous, activation) : undefined;
  if (steps?.timeout) {
    for (const line of steps.timeout.journal) log(`  ${line}`);
    throw new RickError('ROLLBACK_FAILED', describeFailure(steps.timeout));
  }
  const restartError = steps?.error;
  // The previous sites are live again once Caddy re-reads them; with no
  // previous generation, the sites are gone and Caddy reloads without them.
  const reload = reverse
    ? reverse.reload
    : planActivation(failed, { generation: 0, bundles: new Map() }).reload;
  const reloadFailure = await reloadUnits(host, reload);
  if (reloadFailure) {
    for (const line of reloadFailure.journal) log(`  ${line}`);
    throw new RickError('ROLLBACK_FAILED', describeFailure(reloadFailure));
  }
  if (reload.length) log(`reloaded ${reload.join(' ')}`);
  const again = await healthGate(
    host,
    (reverse?.restarted ?? [])
      .map((s) => previous.get(s))
      .filter((s): s is Service => s !== undefined),
    activation,
  );
  if (again) {
    for (const line of again.journal) log(`  ${line}`);
    throw new RickError('ROLLBACK_FAILED', describeFailure(again));
  }
  if (restartError) log(`systemctl reported ${describe(restartError)}, but every unit is active`);
}

/** One line for the operator: what failed and the unit's last journal line. */
export function describeFailure(failure: GateFailure): string {
  const last = failure.journal.at(-1);
  return `${failure.reason}${last ? ` (last journal line: ${last})` : ''}`;
}
