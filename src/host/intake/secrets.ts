/**
 * Host secrets: `/etc/rick/secrets/<bundle>.env`, one `KEY=value` a line.
 * Secrets never enter a bundle; the host keeps them in a file only root can
 * read. A file anyone else can read, or that someone else owns, is refused:
 * its secrets must be taken as already leaked, or as planted.
 *
 * Format: blank lines and `#` comments are ignored; `export KEY=value` is
 * accepted; a value may be wrapped in matching single or double quotes, which
 * are removed (no escapes are interpreted); unquoted values are trimmed.
 * Values may not contain control characters: a newline in a value would
 * inject a line into an env file. Messages name line numbers and valid keys,
 * never values, nor the text of a line that holds no valid key (it may be a
 * value).
 */
import { constants, type promises as fsp } from 'node:fs';
import { open } from 'node:fs/promises';
import { describe, RickError } from '../../errors.js';

export interface SecretsFileOptions {
  /** Required owner uid (0 on a host). Unset in tests that run unprivileged. */
  requireOwner?: number;
}

const MAX_SECRETS_BYTES = 1024 * 1024;
const keyPattern = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
// C0 controls, DEL and C1 controls; a tab is a control character too.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/;

/** Parses the text of a secrets file; pure. Throws listing every problem at once. */
export function parseSecrets(text: string, source: string): Map<string, string> {
  const secrets = new Map<string, string>();
  const problems: string[] = [];
  const insecure: string[] = [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, index) => {
    const at = `line ${index + 1}`;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const body = trimmed.startsWith('export ') ? trimmed.slice(7).trimStart() : trimmed;
    const eq = body.indexOf('=');
    if (eq <= 0) {
      problems.push(`${at}: expected KEY=value`);
      return;
    }
    const key = body.slice(0, eq).trim();
    if (!keyPattern.test(key)) {
      // Not quoted: what stands before `=` on a malformed line may be part of
      // a value (a pasted URL, a line split inside a quoted value).
      problems.push(
        `${at}: the text before "=" is not a key (letters, digits and _, not starting with a digit)`,
      );
      return;
    }
    let value = body.slice(eq + 1).trim();
    const quote = value[0];
    if (quote === '"' || quote === "'") {
      if (value.length < 2 || !value.endsWith(quote)) {
        problems.push(
          `${at}: ${key} has an unterminated ${quote === '"' ? 'double' : 'single'} quote`,
        );
        return;
      }
      value = value.slice(1, -1);
    }
    if (controlCharacter.test(value)) {
      insecure.push(`${at}: ${key} contains a control character`);
      return;
    }
    if (secrets.has(key)) {
      problems.push(`${at}: ${key} is set twice`);
      return;
    }
    secrets.set(key, value);
  });
  if (insecure.length) {
    throw new RickError('SECRETS_INSECURE', `${source}: ${insecure.join('; ')}`, {
      hint: 'secret values must be one line of printable characters',
    });
  }
  if (problems.length) {
    throw new RickError('CONFIG_INVALID', `${source}: ${problems.join('; ')}`, {
      hint: 'write one KEY=value per line',
    });
  }
  return secrets;
}

/**
 * Reads a secrets file, or returns undefined when it does not exist (the
 * caller decides whether the bundle needed one; resolveFacts names the file).
 */
export async function readSecretsFileIfPresent(
  path: string,
  options: SecretsFileOptions = {},
): Promise<Map<string, string> | undefined> {
  let handle: fsp.FileHandle;
  try {
    // Non-blocking so that a FIFO cannot hang the installer; the checks below
    // look at the opened descriptor, so what is checked is what is read.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RickError('IO_ERROR', `cannot open secrets file ${path}: ${describe(error)}`, {
      cause: error,
    });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      throw new RickError('SECRETS_INSECURE', `secrets file ${path} is not a regular file`);
    }
    const mode = st.mode & 0o7777;
    if (mode & 0o077) {
      throw new RickError(
        'SECRETS_INSECURE',
        `secrets file ${path} has mode ${mode.toString(8).padStart(4, '0')}; it must not be readable or writable by group or others`,
        { hint: `chmod 0600 ${path}` },
      );
    }
    if (options.requireOwner !== undefined && st.uid !== options.requireOwner) {
      throw new RickError(
        'SECRETS_INSECURE',
        `secrets file ${path} is owned by uid ${st.uid}, not ${options.requireOwner}`,
        { hint: `chown ${options.requireOwner} ${path}` },
      );
    }
    if (st.size > MAX_SECRETS_BYTES) {
      throw new RickError(
        'CONFIG_INVALID',
        `secrets file ${path} is larger than ${MAX_SECRETS_BYTES} bytes`,
      );
    }
    const bytes = await handle.readFile();
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new RickError('CONFIG_INVALID', `secrets file ${path} is not UTF-8 text`);
    }
    return parseSecrets(text, path);
  } finally {
    await handle.close();
  }
}

/** Reads a secrets file that must exist; a missing file is FACT_MISSING naming it. */
export async function readSecretsFile(
  path: string,
  options: SecretsFileOptions = {},
): Promise<Map<string, string>> {
  const secrets = await readSecretsFileIfPresent(path, options);
  if (!secrets) {
    throw new RickError('FACT_MISSING', `secrets file ${path} does not exist`, {
      hint: `create it (root, mode 0600) with one KEY=value per secret the bundle needs`,
    });
  }
  return secrets;
}
