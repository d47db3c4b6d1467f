/**
 * templates/caddy.j2's forward_auth_site, rendered as a bundle renders it and
 * served by a real Caddy on loopback, in front of a stand-in outpost that
 * answers as Authentik's does (X-Authentik-* headers on 200, a redirect to
 * sign in otherwise) and an application that reports the identity headers
 * it receives. Skipped without caddy, except under CI=true.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRenderer } from '../../src/build/render.js';
import { httpStatus } from '../../src/host/system.js';
import { repoRoot } from '../helpers/host-tree.js';
import { havePrograms } from '../helpers/programs.js';

const caddy = havePrograms('caddy');

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

function listen(
  handler: (req: IncomingMessage) => Answer,
): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      const answer = handler(req);
      res.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? '');
    });
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : 0 });
    });
  });
}

function get(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string; location?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          ...(res.headers.location ? { location: res.headers.location } : {}),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

let dir: string;
let caddyProcess: ChildProcess | undefined;
let outpost: { server: Server; port: number };
let app: { server: Server; port: number };
let sitePort: number;
const outpostSaw: Array<Record<string, string | string[] | undefined>> = [];

async function freePort(): Promise<number> {
  const { server, port } = await listen(() => ({ status: 204 }));
  await new Promise((r) => server.close(r));
  return port;
}

beforeAll(async () => {
  if (!caddy) return;
  dir = await mkdtemp(join(tmpdir(), 'rick-forward-auth-'));
  outpost = await listen((req): Answer => {
    outpostSaw.push({ url: req.url, ...req.headers });
    if (req.url?.startsWith('/outpost.goauthentik.io/start')) {
      return { status: 200, body: 'sign-in page' };
    }
    const session = /(?:^|;\s*)session=([^;]*)/.exec(req.headers.cookie ?? '')?.[1];
    if (!session) {
      return { status: 302, headers: { location: '/outpost.goauthentik.io/start' } };
    }
    const [user, groups = ''] = decodeURIComponent(session).split(':');
    return {
      status: 200,
      headers: {
        'X-Authentik-Username': user ?? '',
        'X-Authentik-Name': `Name of ${user}`,
        'X-Authentik-Email': `${user}@example.org`,
        'X-Authentik-Groups': groups,
      },
    };
  });
  app = await listen((req) => ({
    status: 200,
    body: JSON.stringify({
      user: req.headers['remote-user'] ?? null,
      name: req.headers['remote-name'] ?? null,
      email: req.headers['remote-email'] ?? null,
      groups: req.headers['remote-groups'] ?? null,
    }),
  }));
  sitePort = await freePort();
  const renderer = createRenderer({
    bundleDir: dir,
    templatesDir: join(repoRoot, 'templates'),
  });
  const site = (name: string, group: string) =>
    renderer.render('site.caddy.j2', {
      domain: `http://${name}:${sitePort}`,
      backend: `127.0.0.1:${app.port}`,
      group,
      outpost: `127.0.0.1:${outpost.port}`,
    });
  await writeFile(
    join(dir, 'site.caddy.j2'),
    '{% import "caddy.j2" as caddy %}\n{{ caddy.forward_auth_site(domain, backend, group=group, outpost=outpost) }}\n',
  );
  await writeFile(
    join(dir, 'Caddyfile'),
    `{\n\tadmin off\n}\n\n${site('app.test', 'app-users')}\n\n${site('open.test', '')}\n`,
  );
  caddyProcess = spawn(
    'caddy',
    ['run', '--adapter', 'caddyfile', '--config', join(dir, 'Caddyfile')],
    {
      env: { ...process.env, HOME: dir },
      stdio: 'ignore',
    },
  );
  for (
    let i = 0;
    (await httpStatus(`http://127.0.0.1:${sitePort}/`, 500, 'open.test')) === undefined;
    i++
  ) {
    if (i > 100) throw new Error('caddy did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}, 60_000);

afterAll(async () => {
  if (caddyProcess && caddyProcess.exitCode === null) {
    const exited = new Promise((r) => caddyProcess?.once('exit', r));
    caddyProcess.kill('SIGTERM');
    await exited;
  }
  await Promise.all([outpost, app].map((s) => s && new Promise((r) => s.server.close(r))));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!caddy)('forward_auth_site in front of an application, with a real Caddy', () => {
  it('sends a request without the outpost’s approval to sign in; the application never sees it', async () => {
    const r = await get(sitePort, '/repos', { host: 'app.test' });
    expect(r.status).toBe(302);
    expect(r.location).toBe('/outpost.goauthentik.io/start');
    expect(r.body).not.toContain('"user"');
  });

  it('hands the application the outpost’s user as Remote-User, -Name, -Email and -Groups', async () => {
    const r = await get(sitePort, '/repos', {
      host: 'app.test',
      cookie: 'session=alice:staff|app-users',
    });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({
      user: 'alice',
      name: 'Name of alice',
      email: 'alice@example.org',
      groups: 'staff|app-users',
    });
    // The outpost was asked as Authentik's Caddy integration asks it.
    const asked = outpostSaw.at(-1);
    expect(asked?.url).toBe('/outpost.goauthentik.io/auth/caddy');
    expect(asked?.['x-forwarded-uri']).toBe('/repos');
    expect(asked?.['x-forwarded-method']).toBe('GET');
  });

  it('answers 403 to a user outside the required group, and to a group that only contains its name', async () => {
    for (const groups of ['staff', 'app-users-old|staff', 'xapp-users']) {
      const r = await get(sitePort, '/', { host: 'app.test', cookie: `session=bob:${groups}` });
      expect(r.status, groups).toBe(403);
      expect(r.body).toBe('Forbidden: app-users only');
    }
  });

  it('drops identity headers the client sends itself', async () => {
    const r = await get(sitePort, '/', {
      host: 'app.test',
      cookie: 'session=carol:app-users',
      'remote-user': 'admin',
      'remote-groups': 'admins',
    });
    expect(JSON.parse(r.body)).toMatchObject({ user: 'carol', groups: 'app-users' });
    const anonymous = await get(sitePort, '/', { host: 'app.test', 'remote-user': 'admin' });
    expect(anonymous.status).toBe(302);
  });

  it('proxies the outpost’s own paths (sign-in) to the outpost, without asking it first', async () => {
    const r = await get(sitePort, '/outpost.goauthentik.io/start', { host: 'app.test' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('sign-in page');
  });

  it('without a group, lets every user the outpost approves through', async () => {
    const r = await get(sitePort, '/', { host: 'open.test', cookie: 'session=dave:' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ user: 'dave' });
  });
});
