#!/usr/bin/node
// Stand-in for the Authentik image in the end-to-end test host. Like
// Authentik's entrypoint it takes `server` or `worker`, and reads the same
// environment the authentik bundle's env file provides:
//   AUTHENTIK_POSTGRESQL__HOST (a socket directory), __NAME, __USER, __PASSWORD
//   AUTHENTIK_CACHE__URL  unix:///path/to/valkey.sock?db=N&password=<percent-encoded>
//   AUTHENTIK_LISTEN__HTTP  host:port (default 0.0.0.0:9000)
// `server` answers GET /-/health/live/ with 200 only while `select 1` over
// the PostgreSQL socket and PING over the Valkey socket both succeed, so the
// health gate proves the container reaches both sockets with its groups.
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';

const env = process.env;
const mode = process.argv[2] ?? 'server';

function run(cmd, args, extraEnv) {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: { ...env, ...extraEnv }, timeout: 5000 },
      (error, stdout, stderr) => {
        resolve({
          ok: !error,
          out: `${stdout}`.trim(),
          err: `${stderr || error?.message || ''}`.trim(),
        });
      },
    );
  });
}

async function checkPostgres() {
  const r = await run(
    'psql',
    [
      '-h',
      env.AUTHENTIK_POSTGRESQL__HOST ?? '',
      '-d',
      env.AUTHENTIK_POSTGRESQL__NAME ?? '',
      '-U',
      env.AUTHENTIK_POSTGRESQL__USER ?? '',
      '-tAc',
      'select 1',
    ],
    { PGPASSWORD: env.AUTHENTIK_POSTGRESQL__PASSWORD ?? '', PGCONNECT_TIMEOUT: '3' },
  );
  return r.ok && r.out === '1' ? null : `postgresql: ${r.err || r.out}`;
}

async function checkValkey() {
  let url;
  try {
    url = new URL(env.AUTHENTIK_CACHE__URL ?? '');
  } catch {
    return 'valkey: AUTHENTIK_CACHE__URL is not a URL';
  }
  if (url.protocol !== 'unix:') return `valkey: expected a unix:// URL, got ${url.protocol}`;
  // URLSearchParams decodes like redis-py's parse_qs: a literal + would be a space.
  const db = url.searchParams.get('db') ?? '0';
  const password = url.searchParams.get('password') ?? '';
  const r = await run('valkey-cli', ['-s', decodeURIComponent(url.pathname), '-n', db, 'PING'], {
    REDISCLI_AUTH: password,
  });
  return r.ok && r.out === 'PONG' ? null : `valkey: ${r.err || r.out}`;
}

async function runChecks() {
  return (await Promise.all([checkPostgres(), checkValkey()])).filter((p) => p !== null);
}

// Requests that arrive while a check runs share its answer: a client probing
// every 100 ms (bench/upgrade.mjs) must not pile up psql and valkey-cli runs
// faster than they finish, which would make the server itself stop answering.
let running = null;
function check() {
  running ??= runChecks().finally(() => {
    running = null;
  });
  return running;
}

function log(message) {
  process.stdout.write(`authentik-standin ${mode}: ${message}\n`);
}

// As PID 1 of its container, node must exit on SIGTERM itself.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    log(`${signal}, exiting`);
    process.exit(0);
  });
}

if (mode === 'server') {
  const [host, port] = (env.AUTHENTIK_LISTEN__HTTP ?? '0.0.0.0:9000').split(/:(?=\d+$)/);
  const server = createServer(async (req, res) => {
    if (req.method === 'GET' && req.url === '/-/health/live/') {
      const problems = await check();
      if (problems.length === 0) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else {
        log(`unhealthy: ${problems.join('; ')}`);
        res.writeHead(503, { 'content-type': 'text/plain' }).end(`${problems.join('\n')}\n`);
      }
      return;
    }
    res.writeHead(404).end();
  });
  server.listen(Number(port), host, async () => {
    const problems = await check();
    log(
      `listening on ${host}:${port}; ${problems.length ? `unhealthy: ${problems.join('; ')}` : 'postgresql and valkey answer'}`,
    );
  });
} else if (mode === 'worker') {
  const tick = async () => {
    const problems = await check();
    log(problems.length ? `unhealthy: ${problems.join('; ')}` : 'postgresql and valkey answer');
  };
  tick();
  setInterval(tick, 30_000);
} else {
  log(`unknown command ${mode}; expected server or worker`);
  process.exit(2);
}
