/**
 * Entry point of the single-file installer (dist/installer/rick-install.mjs,
 * see installer/build.mjs).
 *
 * `rick-install update` is what the timer runs on every host every hour, and
 * nearly every run ends with the feed answering 304. That path runs from the
 * small front part of the file with a program holding only the update
 * command; the rest (the install pipeline, openpgp, tar, the schemas) is
 * evaluated only when there is something to install. Every other command
 * line goes to the full program, unchanged.
 */
import { createRequire } from 'node:module';
import * as errors from '../src/errors.js';

declare const __RICK_DEFERRED_MARKER__: string;

interface Deferred {
  createProgram: typeof import('../src/cli/rick-install.js').createProgram;
  runProgram: typeof import('../src/cli/run.js').runProgram;
}

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
    const [{ readFileSync }, { fileURLToPath }, { brotliDecompressSync }] = await Promise.all([
      import('node:fs'),
      import('node:url'),
      import('node:zlib'),
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
    const code = brotliDecompressSync(Buffer.from(self.slice(start, end), 'base64'));
    return (await import(`data:text/javascript;base64,${code.toString('base64')}`)) as Deferred;
  })();
  return loaded;
};

const argv = process.argv.slice(2);

if (argv[0] === 'update') {
  const [{ Command }, update, { createHttpClient }, { processOutput, runProgram }] =
    await Promise.all([
      import('commander'),
      import('../src/commands/update.js'),
      import('../src/io/feed-client.js'),
      import('../src/cli/run.js'),
    ]);
  const log = (line: string) => processOutput.stdout(`${line}\n`);
  const program = new Command('rick-install')
    .option('--debug', 'print stack traces of errors')
    .addHelpText('after', `\nExit codes:\n${errors.formatExitCodes()}\n`);
  program.addCommand(
    update.updateCommandWith(() => ({
      http: createHttpClient(process.env),
      env: process.env,
      now: () => new Date(),
      log,
      install: async (request) => {
        const { realHost } = await import('../src/commands/update-deferred.js');
        const host = realHost(request.root === '/' ? {} : { root: request.root });
        await update.installThroughPipeline(request, host, log);
      },
    })),
  );
  process.exitCode = await runProgram(program, argv);
} else {
  const { createProgram, runProgram } = await shared.__rickDeferred();
  process.exitCode = await runProgram(createProgram(), argv);
}
