/**
 * systemd's own `systemd-analyze verify` as the judge of the plain systemd
 * units a bundle carries (`.service`, `.timer`, `.path`, `.socket`), for the
 * builder and for the installer before a generation goes live.
 *
 * `--recursive-errors=no`: only the bundle's own units are judged. Their
 * dependencies are Quadlet services that do not exist until quadlet
 * generates them, or host units a builder does not have; whether they exist
 * is the host's business, not the unit file's.
 */
import { RickError } from '../errors.js';
import { type CommandRunner, realCommandRunner } from '../io/exec.js';

export interface SystemdVerifyOptions {
  runner?: CommandRunner;
  /** Default $RICK_SYSTEMD_ANALYZE, else `systemd-analyze` on the PATH. */
  analyzePath?: string;
  env?: NodeJS.ProcessEnv;
}

export interface SystemdVerifyResult {
  ok: boolean;
  /** Lines that make the verification fail. */
  errors: string[];
  /**
   * `Command … is not executable`: a program the unit runs is missing on
   * this machine. Meaningful on the host that runs the unit, not on a builder.
   */
  missingCommands: string[];
  /** Lines systemd only warns about (an unknown key, which it ignores). */
  warnings: string[];
}

const warning = /(, ignoring\.?$|ignoring:|Unknown (key|section|lvalue))/;
const missingCommand = /: Command .+ is not executable/;
/** systemd's summary after the real error; it adds nothing to the message. */
const summary =
  /^(Unit \S+ has a bad unit file setting\.|\S+: Unit configuration has fatal error, unit will not be started\.)$/;

/** Judges unit files (absolute paths whose base names are the unit names). */
export async function verifySystemdUnits(
  files: readonly string[],
  options: SystemdVerifyOptions = {},
): Promise<SystemdVerifyResult> {
  if (files.length === 0) return { ok: true, errors: [], missingCommands: [], warnings: [] };
  const env = options.env ?? process.env;
  const command = options.analyzePath ?? env.RICK_SYSTEMD_ANALYZE ?? 'systemd-analyze';
  const runner = options.runner ?? realCommandRunner;
  const result = await runner.run(
    command,
    ['verify', '--man=no', '--recursive-errors=no', '--', ...files],
    { env: { ...env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: '' }, timeoutMs: 60_000 },
  );
  if (result.startError !== undefined || (result.code === 127 && result.stdout === '')) {
    throw new RickError(
      'PREREQUISITE_MISSING',
      `cannot run ${command}: ${result.stderr.trim() || result.startError}`,
      {
        hint: "install systemd's tools (Debian: apt-get install systemd) or set RICK_SYSTEMD_ANALYZE",
      },
    );
  }
  const errors: string[] = [];
  const missingCommands: string[] = [];
  const warnings: string[] = [];
  /** Every line but the summaries, in systemd's order: a refusal's whole story. */
  const story: string[] = [];
  for (const raw of `${result.stderr}\n${result.stdout}`.split('\n')) {
    const line = raw.trimEnd();
    if (line === '' || summary.test(line)) continue;
    if (missingCommand.test(line)) {
      missingCommands.push(line);
      continue;
    }
    story.push(line);
    if (warning.test(line)) warnings.push(line);
    else errors.push(line);
  }
  const ok = result.code === 0;
  if (ok) return { ok, errors: [], missingCommands, warnings: story };
  if (errors.length === 0 && missingCommands.length > 0) {
    // Only programs this machine lacks: the caller decides what that means here.
    return { ok, errors: [], missingCommands, warnings };
  }
  // What systemd ignored (an unparsable value) is often why it refuses.
  const message =
    story.length > 0
      ? story
      : [`${command} verify failed (${result.signal ?? `exit ${result.code}`})`];
  return { ok, errors: message, missingCommands, warnings: [] };
}
