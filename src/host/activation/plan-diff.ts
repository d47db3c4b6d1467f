/**
 * The unified diff `rick-install plan` prints: every unit, site and env file of the
 * live generation against the next one, each generation's own directory taken
 * out, secret values masked (only the masked renderings are ever diffed).
 * Kept apart from plan.ts so that an install does not load the diff library.
 */
import { createTwoFilesPatch } from 'diff';
import { fileKeys, type GenerationView, maskedNormalized, normalized } from './plan.js';

const shownKinds = /^(quadlet|systemd|caddy|env)\//;

/** Empty when no unit or env file differs. */
export function diffGenerations(live: GenerationView | undefined, next: GenerationView): string {
  const patches: string[] = [];
  for (const [id, key] of fileKeys(live, next)) {
    if (!shownKinds.test(key.path)) continue;
    const before = normalized(live, key);
    const after = normalized(next, key);
    if (before === after) continue;
    const mBefore = maskedNormalized(live, key);
    const mAfter = maskedNormalized(next, key);
    // A secret alone changed: the plan says so, the masked texts are equal.
    if (before !== undefined && after !== undefined && mBefore === mAfter) continue;
    patches.push(
      createTwoFilesPatch(
        before === undefined ? '/dev/null' : `a/${id}`,
        after === undefined ? '/dev/null' : `b/${id}`,
        mBefore ?? '',
        mAfter ?? '',
        live && before !== undefined ? `generation ${live.generation}` : undefined,
        after !== undefined ? `generation ${next.generation}` : undefined,
        { context: 3 },
      ),
    );
  }
  return patches.join('');
}
