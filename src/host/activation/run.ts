/**
 * Activation: make a written generation live and prove it healthy, or put
 * the previous one back. Shared by install, rollback and crash recovery.
 *
 *   flip current → daemon-reload → stop removed units → `systemctl restart`
 *   the plan's jobs (a pod's service for its containers, or a pod's
 *   containers one at a time, see plan.ts) →
 *   reload Caddy when a site changed → health gate over every service they
 *   restart
 *   on failure: flip back → daemon-reload → stop what the failed generation
 *   added → restart what differs back to the previous generation (the same
 *   planner, the two generations swapped) → reload Caddy when a site
 *   differs → gate it
 *
 * With `--root` (no systemctl) activation is the flip alone.
 */

import type { Service } from '../../bundle/manifest.js';
import { describe, RickError } from '../../errors.js';
import { checkpoint } from '../fault.js';
import { flipCurrent, type StoredGeneration } from '../generations.js';
import type { HostPaths } from '../paths.js';
import type { Host } from '../system.js';
import { type ActivationPlan, planActivation, type UnitGraphs } from './plan.js';

export const JOURNAL_LINES = 20;

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

async function waitActive(host: Host, service: Service): Promise<string | undefined> {
  const systemctl = host.systemctl!;
  const deadline = host.clock.now().getTime() + service.activeTimeoutSec * 1000;
  let last = 'unknown';
  for (;;) {
    last = (await systemctl.state(service.service)).activeState;
    if (last === 'active') return undefined;
    if (last === 'failed') return `${service.service} failed (ActiveState=failed)`;
    // `systemctl restart` returns only when its jobs are done, so a unit that
    // is inactive now will not start by itself: typically its start failed
    // through a dependency (result "dependency"), which never shows as failed.
    // A crashed unit with Restart= shows as activating and is waited for.
    if (last === 'inactive')
      return `${service.service} is inactive after its restart (ActiveState=inactive)`;
    if (host.clock.now().getTime() >= deadline) {
      return `${service.service} did not become active within ${service.activeTimeoutSec}s (ActiveState=${last})`;
    }
    await host.clock.sleep(1000);
  }
}

async function waitChecks(host: Host, service: Service): Promise<string | undefined> {
  for (const check of service.checks) {
    const deadline = host.clock.now().getTime() + check.timeoutSec * 1000;
    let last: number | undefined;
    for (;;) {
      const remaining = deadline - host.clock.now().getTime();
      last = await host.httpStatus(
        check.url,
        Math.max(1000, Math.min(10_000, remaining)),
        check.host,
      );
      if (last !== undefined && last >= 200 && last < 300) break;
      if (host.clock.now().getTime() >= deadline) {
        const via = check.host === undefined ? '' : ` (Host: ${check.host})`;
        return `${service.service}: ${check.url}${via} did not answer 2xx within ${check.timeoutSec}s (last: ${last ?? 'no answer'})`;
      }
      await host.clock.sleep(check.intervalSec * 1000);
    }
  }
  return undefined;
}

/** Every service reaches `active`, then its HTTP checks answer 2xx, within their timeouts. */
export async function healthGate(
  host: Host,
  services: readonly Service[],
): Promise<GateFailure | undefined> {
  if (!host.systemctl || services.length === 0) return undefined;
  const results = await Promise.all(
    services.map(async (s) => {
      const reason = (await waitActive(host, s)) ?? (await waitChecks(host, s));
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
 * Runs a plan's restarts: one `systemctl restart` per step, each after the
 * one before has finished its jobs (systemctl waits for them). Returns the
 * units handed to systemctl, in order, and the error of the step that
 * failed, if any (systemctl fails a restart whose unit fails to start).
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
): Promise<{ ran: string[][]; error?: unknown }> {
  const systemctl = host.systemctl!;
  const ran: string[][] = [];
  const throughPod = new Set<string>();
  for (const step of plan.steps) {
    let units = step;
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
      }
    }
    ran.push(units);
    try {
      await systemctl.restart(units);
    } catch (error) {
      return { ran, error };
    }
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
): Promise<{ ran: string[][]; error?: unknown }> {
  const systemctl = host.systemctl!;
  await systemctl.daemonReload();
  await checkpoint('daemon-reloaded');
  await systemctl.stop(plan.removed);
  const result = await runSteps(host, plan, log);
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
  try {
    const { ran, error: restartError } = await applyServices(host, plan, log);
    if (plan.removed.length) log(`stopped ${plan.removed.join(' ')}`);
    if (plan.restart.length) {
      const brought = plan.restarted.filter((u) => !plan.restart.includes(u));
      log(
        `restarted ${describeSteps(ran)}${brought.length ? ` (with ${brought.join(' ')})` : ''}${restartError ? ` (systemctl: ${describe(restartError)})` : ''}`,
      );
    }
    failure = await reloadUnits(host, plan.reload);
    if (plan.reload.length && !failure) log(`reloaded ${plan.reload.join(' ')}`);
    const next = servicesIn(to);
    failure ??= await healthGate(
      host,
      plan.restarted.map((s) => next.get(s)).filter((s): s is Service => s !== undefined),
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
  const reverse = back ? planActivation(failed, back, graphs) : undefined;
  const stop = reverse ? reverse.removed : [...servicesIn(failed).keys()].sort();
  await host.systemctl.daemonReload();
  await host.systemctl.stop(stop);
  // A failed restart shows in the gate below, which names the unit.
  const restartError = reverse ? (await runSteps(host, reverse, log)).error : undefined;
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
  const previous = servicesIn(back);
  const again = await healthGate(
    host,
    (reverse?.restarted ?? [])
      .map((s) => previous.get(s))
      .filter((s): s is Service => s !== undefined),
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
