/**
 * Where the host's PostgreSQL and Valkey listen: their unix sockets, from
 * rick.conf (POSTGRESQL_SOCKET_DIR, VALKEY_SOCKET), by default the pattern's
 * `/var/run/postgresql` (socket `.s.PGSQL.5432`) and
 * `/var/run/valkey/valkey.sock`. A host whose PostgreSQL socket lives
 * elsewhere, and the tests' own clusters, set them there.
 */
import { readFile } from 'node:fs/promises';
import { pathProblem } from '../../bundle/needs.js';
import { describe, RickError } from '../../errors.js';
import { CONFIG_HINT, configKeyAt, parseConfigLines } from '../../feed/config.js';

export const DEFAULT_POSTGRESQL_SOCKET_DIR = '/var/run/postgresql';
export const DEFAULT_VALKEY_SOCKET = '/var/run/valkey/valkey.sock';
/** PostgreSQL's port names its socket file in the directory. */
export const POSTGRESQL_PORT = 5432;

export interface SocketConfig {
  postgresqlSocketDir: string;
  valkeySocket: string;
}

export function postgresqlSocket(config: SocketConfig): string {
  return `${config.postgresqlSocketDir}/.s.PGSQL.${POSTGRESQL_PORT}`;
}

/** The two keys from rick.conf's text; throws CONFIG_INVALID naming every problem. */
export function parseSocketConfig(text: string, source: string): SocketConfig {
  const { values, problems, lines } = parseConfigLines(text);
  const config: SocketConfig = {
    postgresqlSocketDir: values.POSTGRESQL_SOCKET_DIR ?? DEFAULT_POSTGRESQL_SOCKET_DIR,
    valkeySocket: values.VALKEY_SOCKET ?? DEFAULT_VALKEY_SOCKET,
  };
  for (const [key, value] of [
    ['POSTGRESQL_SOCKET_DIR', config.postgresqlSocketDir],
    ['VALKEY_SOCKET', config.valkeySocket],
  ] as const) {
    const problem = pathProblem(value);
    if (problem) problems.push({ path: configKeyAt(lines, key), message: problem });
  }
  if (problems.length) {
    throw new RickError(
      'CONFIG_INVALID',
      `${source}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      { hint: CONFIG_HINT },
    );
  }
  return config;
}

/** The sockets rick.conf names (defaults when it has no such keys or does not exist). */
export async function readSocketConfig(configPath: string): Promise<SocketConfig> {
  let text = '';
  try {
    text = await readFile(configPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new RickError('IO_ERROR', `cannot read ${configPath}: ${describe(error)}`, {
        cause: error,
      });
    }
  }
  return parseSocketConfig(text, configPath);
}
