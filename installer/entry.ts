/**
 * Entry point of the single-file installer (dist/installer/rick-install.cjs,
 * see installer/build.mjs).
 *
 * `rick-install update` is what the timer runs on every host every hour, and
 * nearly every run ends with the feed answering 304. That command line runs
 * from the small front part of the file, without even commander; the rest
 * (the install pipeline, tar, the schemas) is evaluated only when
 * there is something to install. Every other command line goes to the full
 * program, unchanged.
 */
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import type { Script } from 'node:vm';
import { dropOutputOnClosedPipe } from '../src/cli/closed-pipe.js';
import { handleStopSignals } from '../src/cli/signals.js';
import * as errors from '../src/errors.js';
import { isJournalStream, warningLine } from '../src/feed/journal.js';
import {
  MAX_BUNDLE_BYTES,
  requiredOwner,
  startVerification,
  type VerifyRequest,
} from '../src/host/intake/signature.js';
import { hostPaths } from '../src/host/paths.js';

declare const __RICK_DEFERRED_MARKER__: string;
declare const __RICK_UNDICI_MARKER__: string;
/** SHA-256 of the rest's source, written in by installer/build.mjs: names its code cache. */
declare const __RICK_DEFERRED_SHA256__: string;

type Deferred = typeof import('./deferred.js');

// Debian 12's apt gives Node.js 18: say so plainly instead of failing later
// on an API it lacks.
if (Number(process.versions.node.split('.')[0]) < 20) {
  process.stderr.write(
    `error PREREQUISITE_MISSING: rick-install needs Node.js 20 or newer; this is ${process.version}\n` +
      'hint: Debian 13 and Arch Linux package Node.js 20 or newer (apt-get install nodejs, pacman -S nodejs)\n',
  );
  process.exit(errors.ExitCode.missingPrerequisite);
}

const shared = globalThis as typeof globalThis & {
  __rickErrors: typeof errors;
  __rickRequire: NodeJS.Require;
  __rickDeferredUrl: string;
  __rickDeferred: () => Promise<Deferred>;
  __rickUndici: () => unknown;
};
shared.__rickErrors = errors;
shared.__rickRequire = createRequire(import.meta.url);
shared.__rickDeferredUrl = new URL('./rick-install.deferred.cjs', import.meta.url).href;

/**
 * V8 code cache of the rest. Compiling it (0.4 MB of JavaScript) adds about
 * a sixth to an install, so after a command that loaded the rest succeeds, the
 * code V8 compiled for it is kept in
 * <root>/var/lib/rick/cache/<sha256 of the rest>.<command>.v8 and handed back
 * to V8 by the next run of that command (one file per command, since each
 * holds only the functions its command ran). It is only ever an
 * optimisation: a missing, damaged or rejected cache (another Node version
 * or other V8 flags) means compiling as usual, and writing it never fails a
 * command. It is written only into an existing state directory, so no
 * command creates one for the cache's sake, and only after success, so a
 * refused command leaves the tree as it was.
 */
const codeCache: { file?: string; script?: Script; wanted: boolean } = { wanted: false };

/** Reads the cache: a SHA-256 of the data, then the data as V8 gave it. */
async function readCodeCache(file: string): Promise<Buffer | undefined> {
  const [{ readFileSync }, { createHash }] = await Promise.all([
    import('node:fs'),
    import('node:crypto'),
  ]);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  // V8 checks its version, its flags and the source's length, but (in
  // release builds) not the data itself: a damaged file must not reach it.
  // The checksum also makes an fsync before the rename unnecessary.
  const data = bytes.subarray(32);
  const sum = createHash('sha256').update(data).digest();
  return bytes.length > 32 && sum.equals(bytes.subarray(0, 32)) ? data : undefined;
}

/** Writes the cache (temporary file, then rename); any failure leaves it unwritten. */
async function writeCodeCache(): Promise<void> {
  const { file, script } = codeCache;
  if (!codeCache.wanted || !script || !file || process.exitCode) return;
  const [fs, { createHash }] = await Promise.all([import('node:fs'), import('node:crypto')]);
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${process.pid}.tmp`);
  try {
    if (!fs.statSync(dirname(dir)).isDirectory()) return;
    fs.mkdirSync(dir, { mode: 0o700, recursive: true });
    // Taken after the command ran, so it holds every function the command compiled.
    const data = script.createCachedData();
    fs.writeFileSync(tmp, Buffer.concat([createHash('sha256').update(data).digest(), data]), {
      flag: 'wx',
      mode: 0o600,
    });
    fs.renameSync(tmp, file);
    // The caches of earlier installers are of no further use.
    for (const name of fs.readdirSync(dir)) {
      if (name.endsWith('.v8') && !name.startsWith(`${__RICK_DEFERRED_SHA256__}.`)) {
        fs.rmSync(join(dir, name), { force: true });
      }
    }
  } catch {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {}
  }
}

/** This file's text, read once for the parts kept in its closing comments. */
let self: string | undefined;

/**
 * Runs the part in the comment opened by `marker` (brotli, base64, a
 * CommonJS-style function: see installer/build.mjs) with vm.Script, and
 * returns its module.exports.
 */
function runPart(
  marker: string,
  name: string,
  options: { cachedData?: Buffer; compiled?: (script: Script) => void } = {},
): unknown {
  const require = shared.__rickRequire;
  const { readFileSync } = require('node:fs') as typeof import('node:fs');
  const { fileURLToPath } = require('node:url') as typeof import('node:url');
  const { brotliDecompressSync } = require('node:zlib') as typeof import('node:zlib');
  const vm = require('node:vm') as typeof import('node:vm');
  self ??= readFileSync(fileURLToPath(import.meta.url), 'latin1');
  const start = self.lastIndexOf(marker) + marker.length;
  const end = self.indexOf('\n*/', start);
  if (start < marker.length || end < start) {
    throw new Error(
      `${fileURLToPath(import.meta.url)} is damaged: the installer's ${name} part is missing`,
    );
  }
  const code = brotliDecompressSync(Buffer.from(self.slice(start, end), 'base64')).toString(
    'latin1',
  );
  const script = new vm.Script(code, {
    filename: fileURLToPath(new URL(`./rick-install.${name}.cjs`, import.meta.url)),
    ...(options.cachedData ? { cachedData: options.cachedData } : {}),
  });
  options.compiled?.(script);
  const run = script.runInThisContext() as (
    require: NodeJS.Require,
    module: { exports: unknown },
    exports: unknown,
  ) => void;
  const module = { exports: {} };
  run(require, module, module.exports);
  return module.exports;
}

let undici: unknown;
shared.__rickUndici = () => {
  undici ??= runPart(__RICK_UNDICI_MARKER__, 'undici');
  return undici;
};

let loaded: Promise<Deferred> | undefined;
shared.__rickDeferred = () => {
  loaded ??= (async () => {
    const cachedData = codeCache.file ? await readCodeCache(codeCache.file) : undefined;
    return runPart(__RICK_DEFERRED_MARKER__, 'deferred', {
      ...(cachedData ? { cachedData } : {}),
      compiled: (script) => {
        codeCache.script = script;
        codeCache.wanted = !cachedData || script.cachedDataRejected === true;
      },
    }) as Deferred;
  })();
  return loaded;
};

const argv = process.argv.slice(2);

/**
 * The timer's own command lines, `update [--root DIR] [--debug]`, run here
 * without commander; anything else (help, typos, other commands) goes to the
 * full program, which parses and reports it as usual.
 */
function timerArgs(args: readonly string[]): { root?: string; debug: boolean } | undefined {
  if (args[0] !== 'update') return undefined;
  const parsed: { root?: string; debug: boolean } = { debug: false };
  for (let i = 1; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--debug') parsed.debug = true;
    else if (arg === '--root' && i + 1 < args.length && !args[i + 1]?.startsWith('-')) {
      parsed.root = args[++i];
    } else if (arg.startsWith('--root=') && arg.length > 7) parsed.root = arg.slice(7);
    else return undefined;
  }
  return parsed;
}

/**
 * What `rick-install [install] <bundle.tgz> [options]` will verify, read the
 * way the install command reads its options, so that its signature check
 * can start before the rest of the program loads (src/host/intake/signature.ts).
 * Anything this does not recognise gives undefined: the install then
 * verifies as usual. A misreading cannot make anything trusted: the install
 * takes the early result only for exactly the request it makes itself.
 */
function installRequest(args: readonly string[]): VerifyRequest | undefined {
  const withValue = new Set([
    '--expect',
    '--signature',
    '--keyring',
    '--secrets',
    '--keep',
    '--root',
  ]);
  const flags = new Set(['--allow-downgrade', '--debug']);
  const values = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (withValue.has(name)) {
      const value = name === arg ? args[++i] : arg.slice(eq + 1);
      if (value === undefined || value === '' || value.startsWith('-')) return undefined;
      values.set(name, value);
    } else if (flags.has(arg)) {
      // nothing to read
    } else if (arg.startsWith('-')) {
      return undefined;
    } else {
      positional.push(arg);
    }
  }
  if (positional[0] === 'install') positional.shift();
  const [bundle, ...extra] = positional;
  if (bundle === undefined || extra.length > 0) return undefined;
  const root = values.get('--root');
  const keyring = values.get('--keyring');
  const signature = values.get('--signature');
  const owner = requiredOwner();
  const paths = hostPaths(root ? resolve(root) : '/');
  return {
    bundlePath: resolve(bundle),
    keyringPath: keyring ? resolve(keyring) : paths.keysDir,
    keyListDir: paths.stateDir,
    maxBytes: MAX_BUNDLE_BYTES,
    ...(signature ? { signaturePath: resolve(signature) } : {}),
    ...(owner === undefined ? {} : { requireKeyOwner: owner }),
  };
}

/**
 * The --root and the command of any other command line, for naming the code
 * cache alone: the full program parses the command line itself. A misreading
 * here costs at most a cache miss, or a cache written into that tree's
 * existing state directory.
 */
function cacheArgs(args: readonly string[]): { root?: string; command: string } {
  const commands = ['install', 'plan', 'status', 'rollback', 'verify', 'update'];
  let root: string | undefined;
  let command: string | undefined;
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') break;
    if (arg === '--help' || arg === '-h') help = true;
    if (arg === '--root' && i + 1 < args.length && !args[i + 1]?.startsWith('-')) {
      root = args[++i];
    } else if (arg.startsWith('--root=') && arg.length > 7) root = arg.slice(7);
    else if (command === undefined && commands.includes(arg)) command = arg;
  }
  // A bundle alone means install.
  return {
    ...(root === undefined ? {} : { root }),
    command: help ? 'help' : (command ?? 'install'),
  };
}

const tick = timerArgs(argv);
const cacheFor = tick ? { root: tick.root, command: 'update' } : cacheArgs(argv);
codeCache.file = join(
  resolve(cacheFor.root ?? '/'),
  'var/lib/rick/cache',
  `${__RICK_DEFERRED_SHA256__}.${cacheFor.command}.v8`,
);

/** Runs the command line: a CommonJS script has no top-level await. */
async function main(): Promise<void> {
  handleStopSignals();
  if (tick) {
    const [update, { createHttpClient }] = await Promise.all([
      import('../src/feed/update-tick.js'),
      import('../src/feed/client.js'),
    ]);
    // stderr only when there is an error to report: the no-op tick never opens it.
    dropOutputOnClosedPipe([process.stdout]);
    const log = (line: string) => {
      process.stdout.write(`${line}\n`);
    };
    const root = tick.root === undefined ? undefined : resolve(tick.root);
    try {
      await update.runUpdate(root === undefined ? {} : { root }, {
        http: createHttpClient(process.env),
        env: process.env,
        now: () => new Date(),
        log,
        warn: (line) => log(warningLine(line, isJournalStream(process.env))),
        install: async (request) => {
          const { realHost } = (await shared.__rickDeferred()).deferred;
          const host = realHost(request.root === '/' ? {} : { root: request.root });
          await update.installThroughPipeline(request, host, log);
        },
        completeInterrupted: async (at) => {
          const { realHost } = (await shared.__rickDeferred()).deferred;
          await update.completeThroughPipeline(at, realHost(at === '/' ? {} : { root: at }), log);
        },
      });
    } catch (error) {
      // The one top-level handler (and commander with it) is in the rest of the
      // program, loaded only when there is an error to report.
      dropOutputOnClosedPipe();
      const { processOutput, reportError } = await shared.__rickDeferred();
      process.exitCode = reportError(error, tick.debug, processOutput);
    }
  } else {
    // An install's signature check (gpgv) runs while the rest loads.
    const request = cacheFor.command === 'install' ? installRequest(argv) : undefined;
    const verifying = request ? startVerification(request) : undefined;
    const { createProgram, runProgram } = await shared.__rickDeferred();
    process.exitCode = await runProgram(createProgram(), argv);
    // Taken or not (a usage error, say), it ends before the process does.
    await verifying;
  }
  await writeCodeCache();
}

// Once the command is done, exit at once rather than have Node tear down the
// whole heap first (a few milliseconds on every run): everything the command
// does is awaited, and stdout and stderr are written synchronously to files
// and pipes on Linux. A failure outside the program's own error handler ends
// the process as an uncaught error would (exit 1, with its stack).
main().then(() => process.exit());
