/**
 * What an activation does, computed from the live generation and the next
 * one, without I/O: which services changed (restart), which are new (start),
 * which were removed (stop). The operator's diff of the same two generations
 * is in plan-diff.ts (loaded by `plan` only: an install never prints it).
 *
 * "Changed" is what a service sees: its unit, or a file of the generation the
 * unit references (its env file, a mounted config), differs once each
 * generation's own directory is taken out. A unit that differs only by its
 * generation path, with the same env content, did not change.
 */

import type { Service } from '../../bundle/manifest.js';
import { RICK_STATE_DIR } from '../paths.js';
import { GENERATION_MARKER, normalizeGenerationPaths } from '../substitute.js';

/** One bundle as it is (or would be) written into a generation. */
export interface RenderedBundle {
  name: string;
  version: string;
  services: readonly Service[];
  /** Every rendered file by bundle path (`quadlet/x.container`, `env/x.env`, …), as written. */
  files: ReadonlyMap<string, Buffer>;
  /** The same files with secret values masked, for display only. */
  masked: ReadonlyMap<string, string>;
}

export interface GenerationView {
  generation: number;
  bundles: ReadonlyMap<string, RenderedBundle>;
}

export interface ServiceChange {
  service: string;
  bundle: string;
  /** Bundle paths whose change makes the service restart. */
  because: string[];
}

export interface ActivationPlan {
  /** Services whose unit or referenced files changed: restarted. */
  changed: ServiceChange[];
  /** Services not in the live generation: started. */
  added: string[];
  /** Services of the live generation that are gone: stopped. */
  removed: string[];
  unchanged: string[];
  /** changed + added, sorted: the one `systemctl restart` transaction. */
  restart: string[];
  /** `<bundle>/<path>` of every file that differs (after taking out generation paths). */
  changedFiles: string[];
  /** Files whose masked rendering is equal but whose bytes differ: a secret changed. */
  secretOnlyChanges: string[];
}

const REFERENCE = new RegExp(
  `${`${RICK_STATE_DIR}/generations/${GENERATION_MARKER}`.replace(/[/.]/g, '\\$&')}/bundles/([a-z0-9-]+)/([A-Za-z0-9_.@+/-]+)`,
  'g',
);

export interface FileKey {
  bundle: string;
  path: string;
}

/** Every `<bundle>/<path>` of either generation, sorted. */
export function fileKeys(
  live: GenerationView | undefined,
  next: GenerationView,
): Array<[string, FileKey]> {
  const all = new Map<string, FileKey>();
  for (const view of [live, next]) {
    for (const bundle of view?.bundles.values() ?? []) {
      for (const path of bundle.files.keys())
        all.set(`${bundle.name}/${path}`, { bundle: bundle.name, path });
    }
  }
  return [...all.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function normalized(view: GenerationView | undefined, key: FileKey): string | undefined {
  const data = view?.bundles.get(key.bundle)?.files.get(key.path);
  return data === undefined ? undefined : normalizeGenerationPaths(data.toString('utf8'));
}

export function maskedNormalized(
  view: GenerationView | undefined,
  key: FileKey,
): string | undefined {
  const text = view?.bundles.get(key.bundle)?.masked.get(key.path);
  return text === undefined ? undefined : normalizeGenerationPaths(text);
}

function servicesOf(
  view: GenerationView | undefined,
): Map<string, { bundle: string; unit: string }> {
  const out = new Map<string, { bundle: string; unit: string }>();
  for (const bundle of view?.bundles.values() ?? []) {
    for (const s of bundle.services) out.set(s.service, { bundle: bundle.name, unit: s.unit });
  }
  return out;
}

export function planActivation(
  live: GenerationView | undefined,
  next: GenerationView,
): ActivationPlan {
  const keys = fileKeys(live, next);

  const changedFiles = new Set<string>();
  const secretOnlyChanges: string[] = [];
  for (const [id, key] of keys) {
    const before = normalized(live, key);
    const after = normalized(next, key);
    if (before === after) continue;
    changedFiles.add(id);
    if (before !== undefined && after !== undefined) {
      if (maskedNormalized(live, key) === maskedNormalized(next, key)) secretOnlyChanges.push(id);
    }
  }

  const liveServices = servicesOf(live);
  const nextServices = servicesOf(next);
  const changed: ServiceChange[] = [];
  const added: string[] = [];
  const unchanged: string[] = [];
  for (const [service, { bundle, unit }] of [...nextServices].sort(([a], [b]) =>
    a < b ? -1 : 1,
  )) {
    if (!liveServices.has(service)) {
      added.push(service);
      continue;
    }
    const unitPath = `quadlet/${unit}`;
    const because: string[] = [];
    if (changedFiles.has(`${bundle}/${unitPath}`) || liveServices.get(service)?.bundle !== bundle) {
      because.push(unitPath);
    }
    const text = normalized(next, { bundle, path: unitPath }) ?? '';
    const referenced = new Set<string>();
    for (const m of text.matchAll(REFERENCE)) referenced.add(`${m[1]}/${m[2]}`);
    for (const ref of [...referenced].sort()) {
      if (changedFiles.has(ref))
        because.push(ref.startsWith(`${bundle}/`) ? ref.slice(bundle.length + 1) : ref);
    }
    if (because.length) changed.push({ service, bundle, because });
    else unchanged.push(service);
  }
  const removed = [...liveServices.keys()].filter((s) => !nextServices.has(s)).sort();
  const restart = [...changed.map((c) => c.service), ...added].sort();
  return {
    changed,
    added,
    removed,
    unchanged,
    restart,
    changedFiles: [...changedFiles],
    secretOnlyChanges,
  };
}

/** The plan as printed by `rick-install plan` and before an install. */
export function formatPlan(plan: ActivationPlan): string {
  const lines: string[] = [];
  for (const c of plan.changed)
    lines.push(`restart ${c.service} (${c.because.join(', ')} changed)`);
  for (const s of plan.added) lines.push(`start   ${s} (new)`);
  for (const s of plan.removed) lines.push(`stop    ${s} (removed)`);
  for (const s of plan.unchanged) lines.push(`keep    ${s} (unchanged)`);
  for (const f of plan.secretOnlyChanges) lines.push(`secret  ${f} (a secret value changed)`);
  if (lines.length === 0) lines.push('no services');
  return `${lines.join('\n')}\n`;
}
