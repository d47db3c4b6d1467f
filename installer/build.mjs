#!/usr/bin/env node
// Builds the self-contained host installer: one CommonJS file,
// dist/installer/rick-install.cjs, with every dependency inside, that runs on
// Node.js 20+ with nothing else installed. Every bundle carries it, so a host
// is bootstrapped from a bundle and the installer updates itself atomically.
// CommonJS, not ESM: Node starts a CommonJS entry point ~9 ms sooner (it
// does not set up its ES module loader), on every tick and every install.
//
// Why two parts in one file. The update timer runs `rick-install update` on
// every host every hour, and nearly every tick ends with the feed answering
// 304. Merely parsing the whole program (undici, zod, commander, semver: ~1.1 MB
// of JavaScript) costs more than Node's own start, so the file holds:
//   - a small front part (installer/entry.ts): the update command and what a
//     no-op tick needs (node:http, the feed cache);
//   - the rest of the program (installer/deferred.ts), built as one plain
//     script, brotli-compressed and base64'd in one comment at the end of the
//     file (the cheapest thing for Node to read past), which the front part
//     reads back from its own file and runs with vm.Script the first time
//     anything in it is needed (with a V8 code cache kept on the host, see
//     installer/entry.ts).
//   - undici (700 KB), which only the feed client behind a proxy uses, in a
//     comment of its own just before the rest's, run the same way when first
//     needed: the rest is then 40% of its size to inflate and compile, and a
//     tick behind a proxy loads undici without the rest.
// The front part reaches the rest only through dynamic imports of
// src/feed/update-deferred.ts, rewritten in the front build to ask for the
// rest (globalThis.__rickDeferred()); both parts reach undici through
// globalThis.__rickUndici().
// The rest shares the front part's
// src/errors.ts (so a RickError thrown by the install pipeline is a RickError
// for the front part's error handler) and its require().
//
// The output is deterministic (no timestamps, no absolute paths, no source
// map; brotli output depends on the input alone), so two builds of the same sources give the same
// bytes and the bundles that carry it stay reproducible.
//
// The installer's version is written into its second line,
// `// rick-install version X.Y.Z`, where a host reads it without running the
// file: a host never links an installer older than the one it has
// (src/host/installer-version.ts). It is --version, else $RICK_VERSION (the
// release build sets it to the release's version), else package.json's.
//
// Beside it, rick-install.meta.json lists every source file inside it
// (esbuild's metafile inputs), from which the release's third-party notices
// and SBOM are made (scripts/third-party.mjs).
//
// Usage: node installer/build.mjs [--outfile PATH] [--version X.Y.Z]
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants } from 'node:zlib';
import { build } from 'esbuild';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const versionIndex = args.indexOf('--version');
const version =
  (versionIndex >= 0 ? args[versionIndex + 1] : undefined) ||
  process.env.RICK_VERSION ||
  JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')).version;
// Roughly the manifest's rule for versions (semver, no build metadata), without
// loading semver here; the host reads a version it cannot parse as none.
if (!/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$/.test(version)) {
  throw new Error(`installer version ${JSON.stringify(version)} is not a semantic version`);
}
const outIndex = args.indexOf('--outfile');
const outfile =
  outIndex >= 0 && args[outIndex + 1]
    ? resolve(args[outIndex + 1])
    : join(repo, 'dist/installer/rick-install.cjs');

const common = {
  absWorkingDir: repo,
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  splitting: false,
  minify: false,
  sourcemap: false,
  legalComments: 'eof',
  // ASCII output (the default): Node decodes an ASCII-only source much faster.
  charset: 'ascii',
  logLevel: 'warning',
  // Which files of which packages went in: scripts/third-party.mjs makes the
  // release's notices and SBOM from it (rick-install.meta.json beside the file).
  metafile: true,
  // --version of the single file prints it (src/version.ts): no package.json beside it.
  define: { 'process.env.NODE_ENV': '"production"', __RICK_VERSION__: JSON.stringify(version) },
};

/** Names a TypeScript module exports as values (types are erased). */
async function valueExports(file) {
  const text = await readFile(join(repo, file), 'utf8');
  const names = new Set();
  for (const m of text.matchAll(/^export (?:async )?(?:const|let|class|function\*?) (\w+)/gm)) {
    names.add(m[1]);
  }
  for (const m of text.matchAll(/^export \{([^}]*)\}/gm)) {
    for (const part of m[1].split(',')) {
      const item = part.trim();
      if (!item || item.startsWith('type ')) continue;
      const alias = item.split(/\s+as\s+/).pop();
      names.add(alias);
    }
  }
  return [...names].sort();
}

/**
 * Replaces a module with one re-exporting `names` from `source`. `target` is
 * a bare package name or a repository file (matched after resolution, so that
 * other modules of the same file name, such as zod's errors.js, stay as they are).
 */
function replaceWith(name, target, source, names) {
  const file = target.startsWith('src/') ? join(repo, target) : undefined;
  const filter = file
    ? new RegExp(`(^|/)${basename(target, '.ts')}\\.js$`)
    : new RegExp(`^${target}$`);
  return {
    name,
    setup(b) {
      b.onResolve({ filter }, (args) => {
        if (file && resolve(args.resolveDir, args.path.replace(/\.js$/, '.ts')) !== file)
          return undefined;
        return { path: target, namespace: name };
      });
      b.onLoad({ filter: /.*/, namespace: name }, () => ({
        loader: 'js',
        contents: `const m = ${source};\nexport const { ${names.join(', ')} } = m;\n`,
      }));
    },
  };
}

/**
 * src/cli/rick-install.ts ends with `if (isEntryPoint()) await main();` for
 * when it is run directly. Inside the rest it is never the entry point
 * (import.meta.url names no file, see below), and a script cannot hold a
 * top-level await, so the rest is built without that line. The build fails
 * if the line changes, rather than shipping it untested.
 */
const withoutEntryPointRun = {
  name: 'rick-without-entry-point-run',
  setup(b) {
    const file = join(repo, 'src/cli/rick-install.ts');
    const line = 'if (isEntryPoint()) await main();';
    b.onLoad({ filter: /[\\/]src[\\/]cli[\\/]rick-install\.ts$/ }, async (args) => {
      if (args.path !== file) return undefined;
      const text = await readFile(file, 'utf8');
      if (!text.includes(line)) throw new Error(`${file} no longer ends with \`${line}\``);
      return { loader: 'ts', contents: text.replace(line, '') };
    });
  },
};

/** Opens the comment holding the rest; the front part finds its last occurrence. */
const DEFERRED_MARKER =
  '\n/* rick-install: the rest of the program, brotli and base64 (installer/build.mjs)\n';
/** Opens the comment holding undici, just before the rest's. */
const UNDICI_MARKER = '\n/* rick-install: undici, brotli and base64 (installer/build.mjs)\n';

/** Makes `undici` a module that asks the front part for it (see the file comment). */
const undiciFromFront = {
  name: 'rick-undici',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, () => ({ path: 'undici', namespace: 'rick-undici' }));
    b.onLoad({ filter: /.*/, namespace: 'rick-undici' }, () => ({
      loader: 'js',
      contents: 'module.exports = globalThis.__rickUndici();\n',
    }));
  },
};

/** Script options shared by the parts the front part runs with vm.Script. */
const script = {
  // A plain script, not a module: the front part compiles it with vm.Script,
  // which is far cheaper than importing it from a data: URL (Node parses
  // and hashes the whole URL several times) and can use a V8 code cache.
  format: 'cjs',
  // Not even a dynamic import(): vm.Script can run one only with a callback
  // that Node 20 allows behind --experimental-vm-modules or with a warning.
  // Those left (Node built-ins the feed client loads lazily) become require().
  supported: { 'dynamic-import': false },
  // Whitespace and syntax only: names stay, so stack traces stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  // Wrapped the way Node wraps a CommonJS module; the front part calls the
  // function with its own require() and collects module.exports.
  banner: { js: '(function (require, module, exports) {' },
  footer: { js: '})' },
};

/** Brotli at its best, in base64: the body of one closing comment. */
const pack = (code) =>
  brotliCompressSync(code, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_SIZE_HINT]: code.length,
    },
  }).toString('base64');

// 1. The rest of the program, evaluated on demand.
const errorNames = await valueExports('src/errors.ts');
const rest = await build({
  ...common,
  ...script,
  entryPoints: ['installer/deferred.ts'],
  outfile: 'deferred.cjs',
  // A script has no import.meta: the rest sees a file URL beside the
  // installer instead. It names no existing file, so the full program does
  // not take itself for the process's entry point.
  define: { ...common.define, 'import.meta.url': 'globalThis.__rickDeferredUrl' },
  plugins: [
    replaceWith('rick-shared-errors', 'src/errors.ts', 'globalThis.__rickErrors', errorNames),
    withoutEntryPointRun,
    undiciFromFront,
  ],
});
const restCode = rest.outputFiles[0].contents;
// Names the rest's V8 code cache on a host (see installer/entry.ts).
const restSha256 = createHash('sha256').update(restCode).digest('hex');
const packed = pack(restCode);

const undici = await build({
  ...common,
  ...script,
  stdin: { contents: "module.exports = require('undici');\n", resolveDir: repo, loader: 'js' },
  outfile: 'undici.cjs',
});
const packedUndici = pack(undici.outputFiles[0].contents);

/**
 * In the front part, `import('./update-deferred.js')` (all the front does with
 * that module) becomes a request for the rest, which holds it. The build
 * fails when a file that should hold such an import no longer does, or when
 * anything else would bring the module into the front part.
 */
const deferredFromRest = {
  name: 'rick-deferred-from-rest',
  setup(b) {
    // The GitHub feed's tick and the signed index's tick.
    const importers = ['src/feed/update-tick.ts', 'src/feed/index-tick.ts'].map((f) =>
      join(repo, f),
    );
    const call = /\bimport\(\s*'\.\/update-deferred\.js'\s*\)/g;
    b.onLoad({ filter: /[\\/]src[\\/]feed[\\/](update|index)-tick\.ts$/ }, async (args) => {
      if (!importers.includes(args.path)) return undefined;
      const text = await readFile(args.path, 'utf8');
      call.lastIndex = 0;
      if (!call.test(text)) throw new Error(`${args.path} no longer imports ./update-deferred.js`);
      return {
        loader: 'ts',
        contents: text.replace(call, 'globalThis.__rickDeferred().then((rest) => rest.deferred)'),
      };
    });
    b.onResolve({ filter: /update-deferred(\.js)?$/ }, (args) => ({
      errors: [{ text: `${args.importer} brings update-deferred into the front part` }],
    }));
  },
};

// 2. The front part, with the rest inside.
const front = await build({
  ...common,
  entryPoints: ['installer/entry.ts'],
  outfile: 'rick-install.cjs',
  format: 'cjs',
  // Node built-ins the front part loads lazily become require(): a dynamic
  // import() in a CommonJS script would set up the ES module loader after all.
  supported: { 'dynamic-import': false },
  define: {
    ...common.define,
    'import.meta.url': '__rickSelfUrl',
    __RICK_DEFERRED_MARKER__: JSON.stringify(DEFERRED_MARKER),
    __RICK_UNDICI_MARKER__: JSON.stringify(UNDICI_MARKER),
    __RICK_DEFERRED_SHA256__: JSON.stringify(restSha256),
  },
  banner: {
    js: [
      '#!/usr/bin/env node',
      `// rick-install version ${version}`,
      "const __rickSelfUrl = require('node:url').pathToFileURL(__filename).href;",
    ].join('\n'),
  },
  plugins: [deferredFromRest, undiciFromFront],
});

await mkdir(dirname(outfile), { recursive: true });
await writeFile(
  outfile,
  Buffer.concat([
    front.outputFiles[0].contents,
    Buffer.from(`${UNDICI_MARKER}${packedUndici}\n*/\n`, 'ascii'),
    Buffer.from(`${DEFERRED_MARKER}${packed}\n*/\n`, 'ascii'),
  ]),
);
await chmod(outfile, 0o755);
// The inputs of the three builds that make up the file, sorted, without the
// byte counts of outputs that do not exist on their own.
const inputs = Object.fromEntries(
  [rest, undici, front]
    .flatMap((b) => Object.entries(b.metafile.inputs))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([path, input]) => [path, { bytes: input.bytes }]),
);
await writeFile(
  outfile.replace(/\.cjs$/, '.meta.json'),
  `${JSON.stringify({ inputs }, null, 2)}\n`,
);
