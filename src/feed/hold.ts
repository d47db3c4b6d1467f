/**
 * Holding a release the host has not granted, the same way for both feeds
 * (the GitHub releases feed, update-tick.ts, and a signed release index,
 * index-decide.ts): an install refused with POLICY_REFUSED is neither a
 * failure nor quarantined. The tick logs one warning line per held release,
 * records it in /var/lib/rick/held.json (src/host/policy/held.ts; `status`
 * shows it) and in the metrics file, and keeps each held bundle's grant file
 * as the hold found it in its cache: a grant written since makes the next
 * tick decide again, and install it.
 */
import { join } from 'node:path';
import { isRickError, type RickError } from '../errors.js';
import { grantFileFor } from '../host/policy/grant-path.js';
import {
  type HeldRelease,
  type HeldReleases,
  heldPath,
  readHeld,
  serializeHeld,
} from '../host/policy/held.js';
import { readText } from './small-file.js';

/** A held release as a feed cache keeps it: with its grant file's text when it was held. */
export type CachedHold = HeldRelease & { grantText: string };

/** Whether an install's error is a refusal by host policy: the release is then held. */
export function isPolicyRefusal(error: unknown): error is RickError {
  return isRickError(error) && error.code === 'POLICY_REFUSED';
}

/** What a refusal by policy says, as a held release. */
export function heldRelease(
  bundle: string,
  version: string,
  message: string,
  root: string,
): HeldRelease {
  const grant = grantFileFor('/', bundle);
  const marker = ' does not grant: ';
  const at = message.indexOf(marker);
  return {
    version,
    since: '',
    needs: at === -1 ? message : message.slice(at + marker.length),
    grant: root === '/' ? grant : join(root, grant),
  };
}

/** The one warning line a tick logs for each release it holds. */
export function heldLine(bundle: string, h: HeldRelease): string {
  return `warning: ${bundle}: holding ${h.version} until ${h.grant} grants what it needs: ${h.needs}`;
}

/** Each held bundle's grant file as the hold found it, so that a grant makes the next tick decide again. */
export function cachedHeld(held: HeldReleases, root: string): Record<string, CachedHold> {
  const out: Record<string, CachedHold> = {};
  for (const [bundle, h] of Object.entries(held)) {
    out[bundle] = { ...h, grantText: readText(grantFileFor(root, bundle)) ?? '' };
  }
  return out;
}

/** Whether every grant file of the releases a cache holds is as the hold found it. */
export function heldGrantsUnchanged(
  held: Readonly<Record<string, CachedHold>> | undefined,
  root: string,
): boolean {
  return Object.entries(held ?? {}).every(
    ([bundle, h]) => (readText(grantFileFor(root, bundle)) ?? '') === h.grantText,
  );
}

/** A cache's `held` field, checked by hand as the caches are (they are read on every tick). */
export function isCachedHolds(value: unknown): boolean {
  return (
    value === undefined ||
    (typeof value === 'object' &&
      value !== null &&
      Object.values(value).every(
        (h) =>
          typeof h === 'object' &&
          h !== null &&
          ['version', 'since', 'needs', 'grant', 'grantText'].every(
            (k) => typeof (h as Record<string, unknown>)[k] === 'string',
          ),
      ))
  );
}

/**
 * Writes held.json when what is held changed; keeps the time each hold began.
 * `writeFileAtomic` is src/host/state.ts's, handed in by the caller: the
 * front part of the installer reaches it only through update-deferred.
 */
export async function recordHeld(
  stateDir: string,
  held: HeldReleases,
  now: Date,
  writeFileAtomic: (file: string, text: string, mode: number) => Promise<void>,
): Promise<HeldReleases> {
  const before = readHeld(stateDir);
  const out: HeldReleases = {};
  for (const [bundle, h] of Object.entries(held)) {
    const since = before[bundle]?.version === h.version ? before[bundle]!.since : now.toISOString();
    out[bundle] = { ...h, since };
  }
  const text = serializeHeld(out);
  const existing = readText(heldPath(stateDir));
  if (Object.keys(out).length === 0) {
    if (existing !== undefined) {
      const { rm } = await import('node:fs/promises');
      await rm(heldPath(stateDir), { force: true });
    }
  } else if (existing !== text) {
    await writeFileAtomic(heldPath(stateDir), text, 0o644);
  }
  return out;
}
