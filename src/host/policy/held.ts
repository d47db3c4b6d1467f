/**
 * /var/lib/rick/held.json: releases the update timer holds because they need
 * more than this host grants them. Written by `rick-install update` when what
 * it holds changes; read by `status`. A hold is not a failure: the release is
 * neither installed nor quarantined, and the next tick after the operator
 * grants its needs installs it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const HELD_FILE = 'held.json';

export interface HeldRelease {
  version: string;
  /** When the timer first held this version. */
  since: string;
  /** What the grant lacks, one line. */
  needs: string;
  /** The grant file to extend. */
  grant: string;
}

export type HeldReleases = Record<string, HeldRelease>;

export function heldPath(stateDir: string): string {
  return join(stateDir, HELD_FILE);
}

/** The held releases; a missing or unreadable file holds none. */
export function readHeld(stateDir: string): HeldReleases {
  try {
    const value = JSON.parse(readFileSync(heldPath(stateDir), 'utf8')) as { bundles?: unknown };
    const bundles = value.bundles;
    if (typeof bundles !== 'object' || bundles === null) return {};
    const out: HeldReleases = {};
    for (const [name, entry] of Object.entries(bundles)) {
      const e = entry as Partial<HeldRelease>;
      if (
        typeof e.version === 'string' &&
        typeof e.since === 'string' &&
        typeof e.needs === 'string' &&
        typeof e.grant === 'string'
      ) {
        out[name] = { version: e.version, since: e.since, needs: e.needs, grant: e.grant };
      }
    }
    return out;
  } catch {
    return {};
  }
}

export function serializeHeld(held: HeldReleases): string {
  const sorted = Object.fromEntries(
    Object.keys(held)
      .sort()
      .map((k) => [k, held[k]]),
  );
  return `${JSON.stringify({ schemaVersion: 1, bundles: sorted }, null, 2)}\n`;
}
