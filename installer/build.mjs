#!/usr/bin/env node
// Builds the self-contained host installer: one ESM file,
// dist/installer/rick-install.mjs, with every dependency inside, that runs on
// Node.js 20+ with nothing else installed. Every bundle carries it, so a host
// is bootstrapped from a bundle and the installer updates itself atomically.
//
// The output is deterministic (no timestamps, no absolute paths, no source
// map), so that two builds of the same sources give the same bytes and the
// bundles that carry it stay reproducible.
//
// Usage: node installer/build.mjs [--outfile PATH]
import { chmod, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--outfile');
const outfile =
  outIndex >= 0 && args[outIndex + 1]
    ? resolve(args[outIndex + 1])
    : join(repo, 'dist/installer/rick-install.mjs');

await mkdir(dirname(outfile), { recursive: true });
await build({
  absWorkingDir: repo,
  entryPoints: ['src/cli/rick-install.ts'],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Dependencies written as CommonJS call require(); an ES module has none of its own.
  banner: {
    js: [
      '#!/usr/bin/env node',
      "import { createRequire as __rickCreateRequire } from 'node:module';",
      'const require = __rickCreateRequire(import.meta.url);',
    ].join('\n'),
  },
  // Not code-split: one file. Modules reached only through import() are still
  // evaluated lazily, which keeps openpgp and zod off the update timer's no-op path.
  splitting: false,
  minify: false,
  sourcemap: false,
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
});
await chmod(outfile, 0o755);
