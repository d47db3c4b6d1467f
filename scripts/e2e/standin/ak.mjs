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
//
// `server` also plays Authentik's embedded outpost for Caddy's forward auth:
// GET /outpost.goauthentik.io/auth/caddy approves a request whose Cookie
// carries `standin_session=<user>:<group>|<group>…` (200 with
// X-Authentik-Username, -Name, -Email and -Groups, as Authentik answers) and
// sends anyone else to sign in (302 to /outpost.goauthentik.io/start).
//
// Started with Gitea's environment (the gitea bundle sets GITEA__database__*),
// it plays Gitea instead: HTTP on GITEA__server__HTTP_PORT, GET /api/healthz
// 200 only while `select 1` over the PostgreSQL socket succeeds with
// GITEA__database__*, and any other path answers with the identity headers
// it received (Remote-User, Remote-Name, Remote-Email, Remote-Groups) as JSON.
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';

const env = process.env;
// An image built with `publish-image.sh --command unhealthy` runs
// `ak unhealthy …`: it serves as usual, and its health check fails, as an
// application release broken behind a working site would.
const args = process.argv.slice(2);
const unhealthy = args[0] === 'unhealthy';
if (unhealthy) args.shift();
const mode = env.GITEA__database__HOST !== undefined ? 'gitea' : (args[0] ?? 'server');

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

async function checkGiteaPostgres() {
  const r = await run(
    'psql',
    [
      '-h',
      env.GITEA__database__HOST ?? '',
      '-d',
      env.GITEA__database__NAME ?? '',
      '-U',
      env.GITEA__database__USER ?? '',
      '-tAc',
      'select 1',
    ],
    { PGPASSWORD: env.GITEA__database__PASSWD ?? '', PGCONNECT_TIMEOUT: '3' },
  );
  return r.ok && r.out === '1' ? null : `postgresql: ${r.err || r.out}`;
}

/** Authentik's forward-auth answer for Caddy, from the stand-in's session cookie. */
function outpostAnswer(req, res) {
  const cookie = req.headers.cookie ?? '';
  const session = /(?:^|;\s*)standin_session=([^;]*)/.exec(cookie)?.[1];
  if (!session) {
    const back = encodeURIComponent(req.headers['x-forwarded-uri'] ?? '/');
    log(`outpost: no session for ${req.headers['x-forwarded-host'] ?? '?'}: sign in first`);
    res.writeHead(302, { location: `/outpost.goauthentik.io/start?rd=${back}` }).end();
    return;
  }
  const [user, groups = ''] = decodeURIComponent(session).split(':');
  log(`outpost: ${user} (groups ${groups || 'none'}) approved`);
  res
    .writeHead(200, {
      'x-authentik-username': user,
      'x-authentik-name': `Stand-in ${user}`,
      'x-authentik-email': `${user}@e2e.test`,
      'x-authentik-groups': groups,
    })
    .end();
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
  if (unhealthy) return ['this image is built to fail its health check (--command unhealthy)'];
  const checks = mode === 'gitea' ? [checkGiteaPostgres()] : [checkPostgres(), checkValkey()];
  return (await Promise.all(checks)).filter((p) => p !== null);
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
  process.stdout.write(
    `${mode === 'gitea' ? 'gitea-standin' : 'authentik-standin'} ${mode}: ${message}\n`,
  );
}

// As PID 1 of its container, node must exit on SIGTERM itself.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    log(`${signal}, exiting`);
    process.exit(0);
  });
}

if (mode === 'gitea') {
  const port = Number(env.GITEA__server__HTTP_PORT ?? 3000);
  const server = createServer(async (req, res) => {
    if (req.method === 'GET' && req.url === '/api/healthz') {
      const problems = await check();
      if (problems.length === 0) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"pass"}\n');
      } else {
        log(`unhealthy: ${problems.join('; ')}`);
        res.writeHead(503, { 'content-type': 'text/plain' }).end(`${problems.join('\n')}\n`);
      }
      return;
    }
    const seen = {
      path: req.url,
      domain: env.GITEA__server__DOMAIN ?? '',
      remoteUser: req.headers['remote-user'] ?? null,
      remoteName: req.headers['remote-name'] ?? null,
      remoteEmail: req.headers['remote-email'] ?? null,
      remoteGroups: req.headers['remote-groups'] ?? null,
    };
    log(`request ${req.method} ${req.url} as ${seen.remoteUser ?? '(no Remote-User)'}`);
    res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(seen)}\n`);
  });
  server.listen(port, '0.0.0.0', async () => {
    const problems = await check();
    log(
      `listening on 0.0.0.0:${port}; ${problems.length ? `unhealthy: ${problems.join('; ')}` : 'postgresql answers'}`,
    );
  });
} else if (mode === 'server') {
  const [host, port] = (env.AUTHENTIK_LISTEN__HTTP ?? '0.0.0.0:9000').split(/:(?=\d+$)/);
  const server = createServer(async (req, res) => {
    if (req.method === 'GET' && req.url === '/outpost.goauthentik.io/auth/caddy') {
      outpostAnswer(req, res);
      return;
    }
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
