/**
 * The package's version, printed by `--version` of both programs. The
 * single-file installer has no package.json beside it: installer/build.mjs
 * writes the version in as __RICK_VERSION__ (the same version it states on
 * the file's second line, src/host/installer-version.ts).
 */
import { readFileSync } from 'node:fs';

declare const __RICK_VERSION__: string | undefined;

export function rickVersion(): string {
  if (typeof __RICK_VERSION__ === 'string') return __RICK_VERSION__;
  // src/version.ts and dist/version.js both sit one level below the checkout.
  const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
