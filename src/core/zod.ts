/**
 * zod, as every schema of rick uses it. Imported instead of 'zod' so that the
 * configuration below is in force before any schema is built (zod reads it
 * when a schema is constructed).
 *
 * jitless: by default zod compiles a fast path for each object schema with
 * `new Function` the first time it parses one. rick parses a handful of
 * documents per process (a manifest, state.json, a config), so compiling
 * costs more than it saves: checking the authentik manifest in a fresh
 * process took 6-8 ms with it and 3-5 ms without (a 1,000-unit manifest
 * 23 ms with, 27 ms without), and what it compiles can never be in the
 * installer's V8 code cache.
 */
import { z } from 'zod';

z.config({ jitless: true });

export { z };
