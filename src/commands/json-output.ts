/**
 * The `--json` shapes of plan, install, update and verify (docs/json.md).
 * Small and stable on purpose: names and lists a script acts on, not the
 * whole internal plan. Pure; the commands print them on stdout, and their
 * progress lines go to stderr instead. A refusal prints no JSON, except
 * where noted: stdout stays empty and the exit code and stderr say why.
 */

import { formatNeed } from '../bundle/needs.js';
import type { ActivationPlan } from '../host/activation/plan.js';
import type { DriftReport } from '../host/drift.js';
import type { InstallResult } from '../host/install.js';
import type { PlanResult } from '../host/plan.js';
import { grantLines } from '../host/policy/grant.js';
import type { PolicyReport } from '../host/policy/judge.js';
import type { HostState } from '../host/state.js';

export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export interface ChangesJson {
  /** Services started for the first time. */
  added: string[];
  /** Services stopped, gone from the new generation. */
  removed: string[];
  /** Every unit that starts or restarts. */
  restarted: string[];
  /** `<bundle>/<path>` of every file that differs. */
  files: string[];
  /** `<bundle>/caddy/<site>` of every site added, changed or removed. */
  sites: string[];
  /** Image references pulled before the flip. */
  images: string[];
  /** Images whose pinned digest moved; null on the side that named the tag alone. */
  imageDigests: { reference: string; before: string | null; after: string | null }[];
}

export function changesJson(plan: ActivationPlan): ChangesJson {
  return {
    added: plan.added,
    removed: plan.removed,
    restarted: plan.restarted,
    files: plan.changedFiles,
    sites: plan.sites,
    images: plan.images.map((i) => i.image),
    imageDigests: plan.imageDigests.map((i) => ({
      reference: i.reference,
      before: i.before ?? null,
      after: i.after ?? null,
    })),
  };
}

export interface PolicyJson {
  grantFile: string;
  /** What the grant lacks, `path /srv/x:rw`; empty when the bundle may be installed. */
  missing: string[];
  /** The lines to add to grantFile, as it takes them. */
  grantLines: string[];
}

export function policyJson(report: PolicyReport): PolicyJson {
  return {
    grantFile: report.grant.file,
    missing: report.missing.map(formatNeed),
    grantLines: grantLines(report.missing),
  };
}

export type PlanJson =
  | { outcome: 'noop'; bundle: string; version: string; reason: string }
  | {
      outcome: 'install';
      bundle: string;
      version: string;
      liveGeneration: number | null;
      changes: ChangesJson;
      notes: string[];
      policy: PolicyJson;
    };

export function planJson(result: PlanResult): PlanJson {
  if (result.outcome === 'noop') {
    const { outcome, bundle, version, reason } = result;
    return { outcome, bundle, version, reason };
  }
  return {
    outcome: 'install',
    bundle: result.bundle,
    version: result.version,
    liveGeneration: result.liveGeneration ?? null,
    changes: changesJson(result.plan),
    notes: result.notes,
    policy: policyJson(result.policy),
  };
}

export interface InstallJson {
  outcome: 'installed' | 'noop';
  bundle: string;
  version: string;
  /** The live generation after the run. */
  generation: number | null;
  previousGeneration: number | null;
  /** Only when installed. */
  changes: ChangesJson | null;
  notes: string[];
}

export function installJson(result: InstallResult): InstallJson {
  return {
    outcome: result.outcome,
    bundle: result.bundle,
    version: result.version,
    generation: result.generation ?? null,
    previousGeneration: result.previousGeneration ?? null,
    changes: result.plan ? changesJson(result.plan) : null,
    notes: result.notes,
  };
}

export interface UpdateJson {
  /** The bundles this run installed, each with its new version. */
  installed: Array<{ bundle: string; version: string }>;
  liveGeneration: number | null;
}

export function updateJson(before: HostState, after: HostState): UpdateJson {
  const installed = Object.entries(after.bundles)
    .filter(([name, b]) => b.installed && b.installed !== before.bundles[name]?.installed)
    .map(([bundle, b]) => ({ bundle, version: b.installed as string }))
    .sort((a, b) => a.bundle.localeCompare(b.bundle));
  return { installed, liveGeneration: after.live ?? null };
}

export interface VerifyJson {
  /** null: nothing installed. */
  generation: number | null;
  checked: number;
  /** Each drifted file, `file: problem`; empty when none drifted. */
  drift: string[];
}

export function verifyJson(report: DriftReport): VerifyJson {
  return { generation: report.generation ?? null, checked: report.checked, drift: report.drift };
}
