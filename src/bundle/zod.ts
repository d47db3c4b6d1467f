/**
 * zod's configuration for every schema of rick. Each module that builds
 * schemas imports this module (for its effect) next to
 * `import * as z from 'zod'`, so that the configuration is in force before
 * any schema is built (zod reads it when a schema is constructed). The
 * namespace import, not `import { z }`, lets the installer's bundler leave
 * out what rick never uses (zod's 60 locales, JSON Schema import): the
 * installer's program is a third smaller for it.
 *
 * jitless: by default zod compiles a fast path for each object schema with
 * `new Function` the first time it parses one. rick parses a handful of
 * documents per process (a manifest, state.json, a config), so compiling
 * costs more than it saves: checking the authentik manifest in a fresh
 * process took 6-8 ms with it and 3-5 ms without (a 1,000-unit manifest
 * 23 ms with, 27 ms without), and what it compiles can never be in the
 * installer's V8 code cache.
 */
import { config } from 'zod';

config({ jitless: true });

/**
 * A failed parse of a feed's document in one line: its first ten problems
 * as `path: message`, `; …` when there are more. The GitHub releases list
 * (src/feed/releases.ts) and the signed release index (release-index.ts)
 * report theirs alike.
 */
export function describeFeedIssues(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
): string {
  const problems = issues
    .slice(0, 10)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
  return `${problems}${issues.length > 10 ? '; …' : ''}`;
}
