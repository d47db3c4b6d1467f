/**
 * The real podman quadlet generator for tests (scripts/fetch-quadlet.sh
 * provides it). Without it a test is skipped, except under CI=true, where a
 * missing generator is a failure.
 */
import { resolve } from 'node:path';
import { findQuadlet } from '../../src/bundle/quadlet.js';

export const repoRoot = resolve(import.meta.dirname, '../..');

export const quadletPath = findQuadlet({ repoRoot });

export const ciRequiresQuadlet = process.env.CI === 'true';

/** Throws under CI when quadlet is missing, so that `describe.skipIf(!quadletPath)` never hides it there. */
export function requireQuadletUnderCi(): void {
  if (!quadletPath && ciRequiresQuadlet) {
    throw new Error(
      "podman's quadlet generator is missing and CI=true: run scripts/fetch-quadlet.sh",
    );
  }
}
