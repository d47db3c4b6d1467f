import { join } from 'node:path';
import semver from 'semver';
import {
  generationDir,
  INSTALLER_FILE,
  listGenerations,
  readGeneration,
  readGenerationRecord,
  readLiveGenerationNumber,
} from '../host/generations.js';
import { readInstallerVersion } from '../host/installer-version.js';
import { hostPaths } from '../host/paths.js';
import {
  type BundleState,
  describeQuarantine,
  type HistoryEntry,
  type QuarantineReason,
  quarantineWhy,
  readState,
} from '../host/state.js';
import type { Host } from '../host/system.js';
import { readAdoptions } from './adopt-record.js';
import { type HeldRelease, readHeld } from './policy/held.js';
import { inconsistencyError, planRecovery, readHostView } from './recovery.js';

export interface ServiceStatus {
  service: string;
  bundle: string;
  /** systemd's ActiveState; `offline` in an offline tree (`--root`), where nothing runs. */
  state: string;
  mainPid?: number;
}

export interface HostStatus {
  /** The generation `current` points at. */
  live?: number;
  /** The generation the state confirms healthy (differs only after an interrupted run). */
  confirmed?: number;
  installedAt?: string;
  /**
   * The version of the live generation's installer (/usr/local/bin/rick-install);
   * null when it states none, absent when the generation carries none.
   */
  installer?: string | null;
  generations: number[];
  keepGenerations: number;
  bundles: Array<{
    name: string;
    version: string;
    highest?: string;
    quarantined: string[];
    /** Each quarantined version with why (`unknown`: recorded before rick kept reasons). */
    quarantines: QuarantineStatus[];
  }>;
  /** The host's files `adopt` took over, oldest first (kept in /var/lib/rick/adopted). */
  adoptions: AdoptionStatus[];
  services: ServiceStatus[];
  history: HistoryEntry[];
  /** What the next run will do first, or why it will refuse (and how to repair). */
  warnings: string[];
  /** Releases the update timer holds until the operator grants what they need. */
  held: Array<{ bundle: string } & HeldRelease>;
}

export interface QuarantineStatus {
  version: string;
  reason: QuarantineReason;
  time?: string;
  detail?: string;
}

export interface AdoptionStatus {
  /** Its directory under /var/lib/rick/adopted, named by the time of the adoption. */
  dir: string;
  /** When the files were moved. */
  time: string;
  bundle: string;
  version: string;
  generation: number;
  /** `done`: the bundle stands for the files; `restored`: they are back in place. */
  state: string;
  files: string[];
}

function quarantinesOf(entry: BundleState | undefined): QuarantineStatus[] {
  return (entry?.quarantined ?? []).map((version) => ({
    version,
    ...quarantineWhy(entry, version),
  }));
}

export async function readStatus(root: string | undefined, host: Host): Promise<HostStatus> {
  const paths = hostPaths(root ?? '/');
  const state = await readState(paths.stateFile);
  const live = await readLiveGenerationNumber(paths);
  const status: HostStatus = {
    live,
    confirmed: state.live,
    generations: await listGenerations(paths),
    keepGenerations: state.keepGenerations,
    bundles: [],
    services: [],
    history: state.history.slice(-20),
    warnings: [],
    adoptions: (await readAdoptions(paths)).map((r) => ({
      dir: r.dir,
      time: r.time,
      bundle: r.bundle,
      version: r.version,
      generation: r.generation,
      state: r.state,
      files: r.files.map((f) => f.path),
    })),
    held: Object.entries(readHeld(paths.stateDir))
      .filter(([name, h]) => {
        const installed = state.bundles[name]?.installed;
        return installed === undefined || semver.gt(h.version, installed);
      })
      .map(([bundle, h]) => ({ bundle, ...h })),
  };
  const view = await readHostView(paths, state);
  const recovery = planRecovery(view);
  if (recovery.action === 'refuse') {
    const error = inconsistencyError(view, recovery.problems);
    status.warnings.push(`${error.message}; to repair: ${error.hint}`);
  } else if (recovery.action === 'undo' && recovery.flippedBack) {
    status.warnings.push(
      `generation ${recovery.intent.to} went live in an interrupted run (${recovery.intent.reason}) and current is back at ${recovery.intent.from ?? 'none'}, but its services may not be; the next run (the update timer's included) restores them`,
    );
  } else if (recovery.action === 'undo') {
    status.warnings.push(
      `generation ${recovery.intent.to} is live but unconfirmed (interrupted run: ${recovery.intent.reason}); the next run restores ${recovery.intent.from ?? 'none'}`,
    );
  } else if (recovery.action === 'discard' || recovery.action === 'finish') {
    status.warnings.push(
      `an interrupted run (${recovery.intent.reason}) left its intent record; the next run clears it`,
    );
  } else if (recovery.action === 'adopt') {
    status.warnings.push(`${paths.stateFile} is missing: the next run adopts the live generation`);
  }
  if (live !== undefined && view.onDisk.includes(live)) {
    const record = await readGenerationRecord(paths, live);
    status.installedAt = record.createdAt;
    if (record.installer) {
      const file = join(generationDir(paths, live), INSTALLER_FILE);
      status.installer = (await readInstallerVersion(file)) ?? null;
    }
    const generation = await readGeneration(paths, live);
    for (const b of generation.bundles.values()) {
      const s = state.bundles[b.name];
      status.bundles.push({
        name: b.name,
        version: b.version,
        highest: s?.highest,
        quarantined: s?.quarantined ?? [],
        quarantines: quarantinesOf(s),
      });
      for (const svc of b.services) {
        const unit = host.systemctl ? await host.systemctl.state(svc.service) : undefined;
        status.services.push({
          service: svc.service,
          bundle: b.name,
          state: host.systemctl ? (unit?.activeState ?? 'unknown') : 'offline',
          ...(unit?.mainPid ? { mainPid: unit.mainPid } : {}),
        });
      }
    }
  }
  // Bundles quarantined but not in the live generation (a failed first install).
  for (const [name, s] of Object.entries(state.bundles)) {
    if (!status.bundles.some((b) => b.name === name) && s.quarantined.length) {
      status.bundles.push({
        name,
        version: '(not installed)',
        highest: s.highest,
        quarantined: s.quarantined,
        quarantines: quarantinesOf(s),
      });
    }
  }
  return status;
}

export function formatStatus(s: HostStatus): string {
  const lines: string[] = [];
  if (s.live === undefined) lines.push('live generation: none (nothing installed)');
  else lines.push(`live generation: ${s.live} (installed ${s.installedAt})`);
  for (const warning of s.warnings) lines.push(`warning: ${warning}`);
  if (s.installer !== undefined) {
    lines.push(`installer: rick-install ${s.installer ?? '(states no version)'}`);
  }
  lines.push(
    `generations on disk: ${s.generations.join(', ') || 'none'} (keeping ${s.keepGenerations})`,
  );
  for (const b of s.bundles) {
    lines.push(
      `bundle ${b.name} ${b.version}${b.highest && b.highest !== b.version ? ` (highest installed ${b.highest})` : ''}`,
    );
    for (const q of b.quarantines) {
      lines.push(
        `  quarantined ${q.version}${q.time ? ` since ${q.time}` : ''}: ${describeQuarantine(q)}`,
      );
    }
    for (const svc of s.services.filter((x) => x.bundle === b.name)) {
      const state = svc.state === 'offline' ? 'not running (offline tree)' : svc.state;
      lines.push(`  ${svc.service}: ${state}${svc.mainPid ? ` (pid ${svc.mainPid})` : ''}`);
    }
  }
  for (const h of s.held) {
    lines.push(
      `held: ${h.bundle} ${h.version} since ${h.since}: needs what ${h.grant} does not grant: ${h.needs}`,
    );
  }
  for (const a of s.adoptions) {
    const where = a.state === 'restored' ? 'put back in place' : `kept in ${a.dir}/files`;
    lines.push(
      `adopted ${a.time}: ${a.bundle} ${a.version} (generation ${a.generation}) took over ${a.files.join(', ')}; ${where}`,
    );
  }
  if (s.history.length) {
    lines.push('history:');
    for (const h of s.history) {
      lines.push(
        `  ${h.time}  generation ${h.generation}  ${h.bundle} ${h.version}  ${h.outcome}${h.detail ? `: ${h.detail}` : ''}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
