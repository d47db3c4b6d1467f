/**
 * Entry point of the single-file installer (dist/installer/rick-install.mjs,
 * see installer/build.mjs).
 *
 * `rick-install update` is what the timer runs on every host every hour, and
 * nearly every run ends with the feed answering 304. That command line runs
 * from the small front part of the file, without even commander; the rest
 * (the install pipeline, openpgp, tar, the schemas) is evaluated only when
 * there is something to install. Every other command line goes to the full
 * program, unchanged.
 */
import { createRequire } from 'node:module';
import * as errors from '../src/errors.js';

declare const __RICK_DEFERRED_MARKER__: string;

type Deferred = typeof import('./deferred.js');

const shared = globalThis as typeof globalThis & {
  __rickErrors: typeof errors;
  __rickRequire: NodeJS.Require;
  __rickDeferredUrl: string;
  __rickDeferred: () => Promise<Deferred>;
};
shared.__rickErrors = errors;
shared.__rickRequire = createRequire(import.meta.url);
shared.__rickDeferredUrl = new URL('./rick-install.deferred.mjs', import.meta.url).href;
let loaded: Promise<Deferred> | undefined;
shared.__rickDeferred = () => {
  loaded ??= (async () => {
    const [{ readFileSync }, { fileURLToPath }, { brotliDecompressSync }, { Script }] =
      await Promise.all([
        import('node:fs'),
        import('node:url'),
        import('node:zlib'),
        import('node:vm'),
      ]);
    // The rest is the comment at the very end of this file.
    const self = readFileSync(fileURLToPath(import.meta.url), 'latin1');
    const start = self.lastIndexOf(__RICK_DEFERRED_MARKER__) + __RICK_DEFERRED_MARKER__.length;
    const end = self.lastIndexOf('\n*/');
    if (start < __RICK_DEFERRED_MARKER__.length || end < start) {
      throw new Error(
        `${fileURLToPath(import.meta.url)} is damaged: the installer's deferred part is missing`,
      );
    }
    const code = brotliDecompressSync(Buffer.from(self.slice(start, end), 'base64')).toString(
      'latin1',
    );
    // The rest is a CommonJS-style function (see installer/build.mjs).
    const script = new Script(code, { filename: fileURLToPath(shared.__rickDeferredUrl) });
    const run = script.runInThisContext() as (
      require: NodeJS.Require,
      module: { exports: unknown },
      exports: unknown,
    ) => void;
    const module = { exports: {} };
    run(shared.__rickRequire, module, module.exports);
    return module.exports as Deferred;
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

const tick = timerArgs(argv);
if (tick) {
  const [{ resolve }, update, { createHttpClient }] = await Promise.all([
    import('node:path'),
    import('../src/commands/update-tick.js'),
    import('../src/io/feed-client.js'),
  ]);
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
      install: async (request) => {
        const { realHost } = await import('../src/commands/update-deferred.js');
        const host = realHost(request.root === '/' ? {} : { root: request.root });
        await update.installThroughPipeline(request, host, log);
      },
    });
  } catch (error) {
    // The one top-level handler (and commander with it) is in the rest of the
    // program, loaded only when there is an error to report.
    const { processOutput, reportError } = await shared.__rickDeferred();
    process.exitCode = reportError(error, tick.debug, processOutput);
  }
} else {
  const { createProgram, runProgram } = await shared.__rickDeferred();
  process.exitCode = await runProgram(createProgram(), argv);
}
