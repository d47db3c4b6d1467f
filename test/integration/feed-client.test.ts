/**
 * The feed client against real loopback servers: byte caps, the overall
 * deadline, redirects that must not carry the token away, and proxies.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RickError } from '../../src/errors.js';
import { createHttpClient } from '../../src/feed/client.js';
import { startConnectProxy } from '../helpers/connect-proxy.js';

const servers: Server[] = [];

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

async function refusal(promise: Promise<unknown>): Promise<RickError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RickError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

const noProxy = {};
const opts = { headers: {}, maxBytes: 1000, timeoutMs: 5000, what: 'demo-1.0.0.tgz' };

describe('feed client', () => {
  it('returns status, headers and body', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { etag: '"abc"' });
      res.end('hello');
    });
    const res = await createHttpClient(noProxy).get(`${base}/x`, opts);
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('"abc"');
    expect(res.body.toString()).toBe('hello');
  });

  it('refuses a body whose announced length exceeds the cap, without reading it', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '5000' });
      res.end(Buffer.alloc(5000));
    });
    const error = await refusal(createHttpClient(noProxy).get(`${base}/x`, opts));
    expect(error.code).toBe('FEED_ERROR');
    expect(error.message).toBe(
      'demo-1.0.0.tgz: server announces 5000 bytes, more than the cap of 1000',
    );
  });

  it('cuts off a chunked body that grows past the cap', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write(Buffer.alloc(400)), 5);
      res.on('close', () => clearInterval(timer));
    });
    const error = await refusal(createHttpClient(noProxy).get(`${base}/x`, opts));
    expect(error.code).toBe('FEED_ERROR');
    expect(error.message).toBe('demo-1.0.0.tgz: more than the cap of 1000 bytes; download cut off');
  });

  it('cuts off a server that trickles bytes, at the overall deadline', async () => {
    let sent = 0;
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '900' });
      // Always just fast enough to defeat a per-read idle timeout.
      const timer = setInterval(() => {
        sent++;
        res.write('x');
      }, 50);
      res.on('close', () => clearInterval(timer));
    });
    const error = await refusal(
      createHttpClient(noProxy).get(`${base}/x`, { ...opts, timeoutMs: 400 }),
    );
    expect(error.code).toBe('FEED_ERROR');
    expect(error.message).toBe('demo-1.0.0.tgz: no complete answer within 0.4 s; download cut off');
    expect(sent).toBeLessThan(900);
  });

  it('cuts off a server that never answers, at the overall deadline', async () => {
    let asked = 0;
    let closed = 0;
    const base = await serve((req) => {
      asked++;
      req.socket.on('close', () => closed++);
    });
    const started = Date.now();
    const error = await refusal(
      createHttpClient(noProxy).get(`${base}/x`, { ...opts, timeoutMs: 300 }),
    );
    expect(error.code).toBe('FEED_ERROR');
    expect(error.message).toBe('demo-1.0.0.tgz: no complete answer within 0.3 s; download cut off');
    expect(asked).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    // The connection was closed by the client, not left for the process to tear down.
    await expect.poll(() => closed).toBe(1);
  });

  it('cuts off a server that never answers through the proxy too', async () => {
    const target = await serve(() => {});
    const proxy = await startConnectProxy();
    servers.push(proxy.server);
    const error = await refusal(
      createHttpClient({ HTTP_PROXY: proxy.url }).get(`${target}/x`, { ...opts, timeoutMs: 300 }),
    );
    expect(error.code).toBe('FEED_ERROR');
    expect(error.message).toBe('demo-1.0.0.tgz: no complete answer within 0.3 s; download cut off');
    expect(proxy.tunnels).toEqual([new URL(target).host]);
  });

  it('sends credentials to their origin only, and never again once a redirect left it', async () => {
    const seen: Array<[string, string | undefined]> = [];
    let base = '';
    const other = await serve((req, res) => {
      seen.push([`other${req.url}`, req.headers.authorization]);
      // Back to the credentials' origin: still no token, the chain left it.
      res.writeHead(302, { location: `${base}/d` });
      res.end();
    });
    base = await serve((req, res) => {
      seen.push([`feed${req.url}`, req.headers.authorization]);
      if (req.url === '/a') {
        res.writeHead(302, { location: '/b' });
      } else if (req.url === '/b') {
        res.writeHead(302, { location: `${other}/c` });
      } else {
        res.write('asset');
      }
      res.end();
    });
    const credentials = { authorization: 'Bearer t0ken', origin: base };
    const res = await createHttpClient(noProxy).get(`${base}/a`, { ...opts, credentials });
    expect(res.body.toString()).toBe('asset');
    expect(seen).toEqual([
      ['feed/a', 'Bearer t0ken'],
      ['feed/b', 'Bearer t0ken'],
      ['other/c', undefined],
      ['feed/d', undefined],
    ]);
    // A URL on another origin than the credentials' gets none at all.
    seen.length = 0;
    await createHttpClient(noProxy).get(`${other}/x`, {
      ...opts,
      credentials: { authorization: 'Bearer t0ken', origin: 'https://api.github.com' },
    });
    expect(seen).toEqual([
      ['other/x', undefined],
      ['feed/d', undefined],
    ]);
  });

  it('refuses plain http off loopback once https is required, before connecting', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(302, { location: 'http://downloads.example.invalid/a.tgz' });
      res.end();
    });
    const client = createHttpClient(noProxy);
    expect(
      (await refusal(client.get('http://downloads.example.invalid/a.tgz', { ...opts, tls: true })))
        .message,
    ).toBe(
      'demo-1.0.0.tgz: refusing plain http for http://downloads.example.invalid/a.tgz: the feed is served over https',
    );
    // Loopback is exempt (this server), but not where it redirects to.
    expect((await refusal(client.get(`${base}/x`, { ...opts, tls: true }))).message).toBe(
      'demo-1.0.0.tgz: refusing to leave https for plain http: http://downloads.example.invalid/a.tgz',
    );
  });

  it('refuses a body that ends short: a closed connection, or fewer bytes than announced', async () => {
    const base = await serve((req, res) => {
      if (req.url === '/promised') {
        res.writeHead(200, { 'content-length': '900' });
        res.write(Buffer.alloc(100));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      // A body delimited by the connection's end looks complete to HTTP.
      res.useChunkedEncodingByDefault = false;
      res.shouldKeepAlive = false;
      res.writeHead(200, { connection: 'close' });
      res.end(Buffer.alloc(100));
    });
    const client = createHttpClient(noProxy);
    expect((await refusal(client.get(`${base}/promised`, opts))).message).toMatch(
      /^demo-1\.0\.0\.tgz: connection closed after 100 of 900 bytes; download cut off \(/,
    );
    expect(
      (await refusal(client.get(`${base}/closed`, { ...opts, expectBytes: 900 }))).message,
    ).toBe('demo-1.0.0.tgz: received 100 bytes, not the 900 the feed announced; download cut off');
  });

  it('hands an error answer back whole enough to explain, whatever the cap', async () => {
    const message = JSON.stringify({ message: 'API rate limit exceeded for 127.0.0.1.' });
    const base = await serve((_req, res) => {
      res.writeHead(403, { 'x-ratelimit-remaining': '0' });
      res.end(message);
    });
    const res = await createHttpClient(noProxy).get(`${base}/x`, { ...opts, maxBytes: 10 });
    expect(res.status).toBe(403);
    expect(res.body.toString()).toBe(message);
  });

  it('refuses a redirect to another scheme and an endless redirect loop', async () => {
    const base = await serve((req, res) => {
      res.writeHead(302, { location: req.url === '/file' ? 'file:///etc/passwd' : '/loop' });
      res.end();
    });
    const client = createHttpClient(noProxy);
    expect((await refusal(client.get(`${base}/file`, opts))).message).toBe(
      'demo-1.0.0.tgz: refusing to fetch file: URL file:///etc/passwd',
    );
    expect((await refusal(client.get(`${base}/loop`, opts))).message).toBe(
      'demo-1.0.0.tgz: more than 5 redirects',
    );
  });

  it('reports an unreachable server as a feed error', async () => {
    const base = await serve(() => {});
    const port = new URL(base).port;
    servers.splice(0).forEach((s) => {
      s.close();
    });
    const error = await refusal(createHttpClient(noProxy).get(`http://127.0.0.1:${port}/`, opts));
    expect(error.code).toBe('FEED_ERROR');
    expect(error.message).toMatch(/^demo-1\.0\.0\.tgz: request failed: ECONNREFUSED/);
    expect(error.hint).toBe('nothing was changed; the next timer tick tries again');
  });

  it('goes through the proxy named by HTTP_PROXY, and not when NO_PROXY says so', async () => {
    const target = await serve((_req, res) => res.end('through'));
    const proxy = await startConnectProxy();
    servers.push(proxy.server);
    const { tunnels, url: proxyUrl } = proxy;
    const targetHost = new URL(target).host;

    const proxied = await createHttpClient({ HTTP_PROXY: proxyUrl }).get(`${target}/x`, opts);
    expect(proxied.body.toString()).toBe('through');
    expect(tunnels).toEqual([targetHost]);

    const direct = await createHttpClient({ HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' }).get(
      `${target}/y`,
      opts,
    );
    expect(direct.body.toString()).toBe('through');
    expect(tunnels).toEqual([targetHost]);
  });
});
