/**
 * What `rick-install status` says about a signed release index: the index
 * this host accepted last (serial, expiry), and per followed bundle its
 * rollout bucket, the pending release and when this host takes it, and
 * whether the installed version is yanked. Read from the accepted index
 * (/var/lib/rick/release-index.json), rick.conf, state.json and
 * /etc/machine-id; nothing is fetched.
 */
import { readFile } from 'node:fs/promises';
import { parseIndex } from '../bundle/release-index.js';
import { isRickError } from '../errors.js';
import { hostPaths } from '../host/paths.js';
import { bundleState, readState } from '../host/state.js';
import { parseConfig } from './config.js';
import { readAcceptedIndex, readMachineId } from './index-client.js';
import { describeWait, LAST_BUCKET, rolloutBucket, selectFromIndex } from './index-select.js';

export interface IndexBundleStatus {
  bundle: string;
  installed?: string;
  /** The release the next tick installs. */
  next?: string;
  /** The newest release waiting for its wave to reach this host. */
  pending?: { version: string; bucket: number; takesAt: string | null };
  /** The installed version's yank. */
  yanked?: { version: string; reason: string };
}

export interface IndexStatus {
  feed: string;
  /** Undefined until a tick accepted an index. */
  accepted?: { serial: number; issued: string; expires: string; expired: boolean };
  machineId: boolean;
  bundles: IndexBundleStatus[];
}

/** The index part of `status`, or undefined when rick.conf does not follow an index. */
export async function readIndexStatus(root: string, now: Date): Promise<IndexStatus | undefined> {
  const paths = hostPaths(root);
  let configText: string;
  try {
    configText = await readFile(paths.config, 'utf8');
  } catch {
    return undefined;
  }
  let config: ReturnType<typeof parseConfig>;
  try {
    config = parseConfig(configText, paths.config, paths.metricsFile);
  } catch (error) {
    // `update` reports an invalid rick.conf; status shows what is installed regardless.
    if (isRickError(error)) return undefined;
    throw error;
  }
  if (config.feedKind !== 'index') return undefined;
  const machineId = readMachineId(root);
  const status: IndexStatus = {
    feed: config.feed,
    machineId: machineId !== undefined,
    bundles: [],
  };
  const accepted = readAcceptedIndex(paths);
  if (accepted === undefined) return status;
  const index = parseIndex(accepted.bytes.toString('utf8'), paths.stateDir);
  status.accepted = {
    serial: index.serial,
    issued: index.issued,
    expires: index.expires,
    expired: now.getTime() >= Date.parse(index.expires),
  };
  const state = await readState(paths.stateFile);
  for (const bundle of config.bundles) {
    const s = bundleState(state, bundle);
    const selection = selectFromIndex(index, {
      bundle,
      policy: { channel: config.channel, range: config.range },
      status: { installed: s.installed, highest: s.highest, quarantined: s.quarantined },
      now,
      bucketOf: (version) =>
        machineId === undefined ? LAST_BUCKET : rolloutBucket(machineId, bundle, version),
      ignoreWaves: false,
    });
    const pending = selection.pending[0];
    status.bundles.push({
      bundle,
      ...(s.installed === undefined ? {} : { installed: s.installed }),
      ...(selection.release ? { next: selection.release.version } : {}),
      ...(pending
        ? {
            pending: {
              version: pending.version,
              bucket: pending.bucket,
              takesAt: pending.takesAt?.toISOString() ?? null,
            },
          }
        : {}),
      ...(selection.liveYanked
        ? { yanked: { version: selection.liveYanked.version, reason: selection.liveYanked.reason } }
        : {}),
    });
  }
  return status;
}

export function formatIndexStatus(s: IndexStatus): string {
  const lines = [`release index ${s.feed}`];
  if (!s.accepted) {
    lines.push('  no index accepted yet (the next update tick fetches it)');
    return `${lines.join('\n')}\n`;
  }
  const a = s.accepted;
  lines.push(
    `  serial ${a.serial}, issued ${a.issued}, expires ${a.expires}${a.expired ? ': EXPIRED, nothing is installed until a fresh index is served (the feed may be frozen)' : ''}`,
  );
  if (!s.machineId) {
    lines.push('  no /etc/machine-id: staged releases are taken with their last wave');
  }
  for (const b of s.bundles) {
    if (b.yanked) {
      lines.push(
        `  ${b.bundle}: the installed version ${b.yanked.version} is YANKED: ${b.yanked.reason} (rick does not roll back by itself)`,
      );
    }
    if (b.next) lines.push(`  ${b.bundle}: ${b.next} is taken at the next update tick`);
    if (b.pending) {
      const wait = describeWait({
        version: b.pending.version,
        bucket: b.pending.bucket,
        takesAt: b.pending.takesAt === null ? undefined : new Date(b.pending.takesAt),
      });
      lines.push(
        `  ${b.bundle}: ${b.pending.version} pending, rollout ${wait}; \`rick-install update --now\` takes it at once`,
      );
    }
    if (!b.next && !b.pending && !b.yanked) {
      lines.push(`  ${b.bundle}: up to date${b.installed ? ` (${b.installed})` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
