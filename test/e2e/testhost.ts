/**
 * The end-to-end test host, driven from the tests: a Debian 13 systemd
 * container booted by scripts/e2e/testhost.sh (systemd-nspawn), and commands
 * run inside it with nsenter. Every command and its output is printed, so a
 * CI log shows what each step checked.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const repo = resolve(import.meta.dirname, '../..');
const script = join(repo, 'scripts/e2e/testhost.sh');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the command's stdin. */
  input?: string;
  /** Do not throw on a non-zero exit (the caller checks `code`). */
  allowFail?: boolean;
  /** Do not print the output (it is large or secret). */
  quiet?: boolean;
  timeoutMs?: number;
}

export function log(line: string): void {
  console.log(line);
}

function indent(text: string, max = 60): string {
  const lines = text.replace(/\n$/, '').split('\n');
  const shown = lines.length > max ? ['…', ...lines.slice(-max)] : lines;
  return shown.map((l) => `    ${l}`).join('\n');
}

/** Runs a program on this machine; throws with its output on failure unless allowFail. */
export function run(file: string, args: string[], options: RunOptions = {}): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code: code ?? (signal ? 128 : 1), stdout, stderr };
      if (!options.quiet) {
        const out = `${stdout}${stderr}`.trim();
        if (out) log(indent(out));
        if (result.code !== 0) log(`    (exit ${result.code}${signal ? `, ${signal}` : ''})`);
      }
      if (result.code !== 0 && !options.allowFail) {
        reject(
          new Error(
            `${[file, ...args].join(' ')} exited ${result.code}${signal ? ` (${signal})` : ''}\n${stdout}${stderr}`,
          ),
        );
      } else resolvePromise(result);
    });
    // A program that exits without reading its input closes the pipe under
    // us (EPIPE); its exit code says how it went.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

function quoteArg(a: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

export class TestHost {
  private pid: number | undefined;

  private constructor(readonly runDir: string) {}

  get root(): string {
    return join(this.runDir, 'root');
  }

  /** Unpacks the cached root (building it first if needed) and configures it. */
  static async create(): Promise<TestHost> {
    const dir = await mkdtemp('/var/tmp/rick-e2e.');
    const host = new TestHost(dir);
    log(`$ scripts/e2e/testhost.sh create ${dir}`);
    await run(script, ['create', dir], { timeoutMs: 900_000 });
    return host;
  }

  /** The generated infrastructure passwords and GIDs (RUN/infra.env). */
  async infra(): Promise<Record<string, string>> {
    const text = await readFile(join(this.runDir, 'infra.env'), 'utf8');
    const out: Record<string, string> = {};
    for (const line of text.split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line);
      if (m) out[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
    }
    return out;
  }

  async boot(): Promise<void> {
    log(`$ scripts/e2e/testhost.sh boot ${this.runDir}`);
    const r = await run(script, ['boot', this.runDir], { timeoutMs: 300_000 });
    this.pid = Number(r.stdout.trim().split('\n').at(-1));
    if (!Number.isInteger(this.pid) || this.pid <= 0) {
      throw new Error(`testhost.sh boot printed no PID: ${r.stdout}`);
    }
  }

  async stop(): Promise<void> {
    log(`$ scripts/e2e/testhost.sh stop ${this.runDir}`);
    await run(script, ['stop', this.runDir], { timeoutMs: 120_000 });
    this.pid = undefined;
  }

  async destroy(): Promise<void> {
    await run(script, ['destroy', this.runDir], { timeoutMs: 120_000, allowFail: true });
    this.pid = undefined;
  }

  /** Runs a command inside the host (all of its namespaces). */
  exec(args: string[], options: RunOptions = {}): Promise<Result> {
    if (this.pid === undefined) throw new Error('the test host is not running');
    if (!options.quiet) log(`[host]$ ${args.map(quoteArg).join(' ')}`);
    return run('nsenter', ['-t', String(this.pid), '-a', ...args], options);
  }

  /**
   * Runs a program of this machine in the host's network namespace only
   * (nsenter --net): it reaches what listens on the host's loopback, such as
   * the registry, while it reads and writes this machine's files with this
   * machine's tools, as a build machine does with its own registry.
   */
  execInNetwork(file: string, args: string[], options: RunOptions = {}): Promise<Result> {
    if (this.pid === undefined) throw new Error('the test host is not running');
    if (!options.quiet) log(`[host network]$ ${[file, ...args].map(quoteArg).join(' ')}`);
    return run('nsenter', [`--net=/proc/${this.pid}/ns/net`, '--', file, ...args], options);
  }

  /** Runs a shell script inside the host. */
  sh(script: string, options: RunOptions = {}): Promise<Result> {
    return this.exec(['sh', '-c', script], options);
  }

  /** Writes a file inside the host, through its own view of the filesystem. */
  async writeFile(path: string, content: string, mode: string): Promise<void> {
    await this.exec(
      [
        'sh',
        '-c',
        'umask 077; mkdir -p "$(dirname "$1")"; cat >"$1.tmp"; chmod "$2" "$1.tmp"; mv "$1.tmp" "$1"',
        'sh',
        path,
        mode,
      ],
      { input: content, quiet: true },
    );
    log(`[host] wrote ${path} (mode ${mode})`);
  }

  /** Copies a file of this machine into the host. */
  async copyIn(local: string, path: string, mode = '0644'): Promise<void> {
    const data = await readFile(local);
    await this.exec(
      [
        'sh',
        '-c',
        'mkdir -p "$(dirname "$1")"; base64 -d >"$1.tmp"; chmod "$2" "$1.tmp"; mv "$1.tmp" "$1"',
        'sh',
        path,
        mode,
      ],
      { input: data.toString('base64'), quiet: true },
    );
  }

  /** systemctl show PROPERTY for a unit, as a string. */
  async show(unit: string, property: string): Promise<string> {
    const r = await this.exec(['systemctl', 'show', '-P', property, unit], { quiet: true });
    return r.stdout.trim();
  }

  /** The status and the last journal lines of units, for a failed step. */
  async diagnose(units: string[]): Promise<void> {
    if (this.pid === undefined) {
      log('(the test host is not running: no unit status to show)');
      return;
    }
    for (const unit of units) {
      log(`--- status and journal of ${unit}`);
      await this.exec(['systemctl', 'status', '--no-pager', '--full', '--lines=0', unit], {
        allowFail: true,
      }).catch(() => undefined);
      await this.exec(['journalctl', '--no-pager', '-n', '40', '-u', unit], {
        allowFail: true,
      }).catch(() => undefined);
    }
  }
}
