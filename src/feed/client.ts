/**
 * The HTTP edge of `rick-install update`: GETs with a byte cap and an overall
 * deadline (a server that trickles bytes is cut off at the deadline, not per
 * read), redirects followed by hand so that credentials never leave the
 * feed's origin, and the usual proxy variables honoured.
 *
 * Without proxy variables the request goes through node:http(s), which costs
 * nothing at startup, so that the timer's no-op tick stays cheap; when
 * HTTPS_PROXY/HTTP_PROXY (or lower case) are set, undici's EnvHttpProxyAgent
 * is loaded and carries the request (it also applies NO_PROXY).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { RickError } from '../errors.js';

export interface HttpGetOptions {
  headers: Record<string, string>;
  /** The body may not exceed this many bytes (Content-Length or counted). */
  maxBytes: number;
  /** Milliseconds for the whole exchange, redirects and body included. */
  timeoutMs: number;
  /** What is being fetched, for messages ("releases list", "authentik-1.2.0.tgz"). */
  what: string;
}

export interface HttpResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string | undefined>;
  body: Buffer;
}

/** The port `update` depends on; tests use the real one against a loopback server. */
export interface HttpClient {
  get(url: string, options: HttpGetOptions): Promise<HttpResponse>;
}

const MAX_REDIRECTS = 5;

interface Hop {
  status: number;
  headers: Record<string, string | undefined>;
  body: AsyncIterable<Buffer>;
  /** Releases the connection when the body is not read. */
  discard(): void;
}

/**
 * One request. `onAbort` receives the function that cuts this exchange off,
 * request and body alike; the client calls it when the deadline passes.
 */
type Transport = (
  url: URL,
  headers: Record<string, string>,
  onAbort: (abort: () => void) => void,
) => Promise<Hop>;

function flatten(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>) {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(headers)) {
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

const nodeTransport: Transport = async (url, headers, onAbort) => {
  const { request } =
    url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise<Hop>((resolve, reject) => {
    // No keep-alive agent: one request per connection, and nothing left open
    // that the process would have to tear down before it exits. Cut off by
    // destroying the request rather than with an AbortSignal, whose first
    // use costs the no-op tick more than a millisecond of start-up.
    const req = request(url, { method: 'GET', headers, agent: false }, (res) => {
      resolve({
        status: res.statusCode ?? 0,
        headers: flatten(res.headers),
        body: res,
        discard: () => res.destroy(),
      });
    });
    req.on('error', reject);
    onAbort(() => req.destroy(new Error('aborted at the deadline')));
    req.end();
  });
};

function proxyConfigured(env: NodeJS.ProcessEnv): boolean {
  return ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some(
    (name) => (env[name] ?? '') !== '',
  );
}

function pick(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name.toLowerCase()] || env[name.toUpperCase()];
  return value ? value : undefined;
}

const undiciTransport = (env: NodeJS.ProcessEnv): Transport => {
  let proxyDispatcher: unknown;
  return async (url, headers, onAbort) => {
    const undici = await import('undici');
    const controller = new AbortController();
    onAbort(() => controller.abort());
    const httpProxy = pick(env, 'http_proxy');
    const httpsProxy = pick(env, 'https_proxy');
    const noProxy = pick(env, 'no_proxy');
    proxyDispatcher ??= new undici.EnvHttpProxyAgent({
      ...(httpProxy ? { httpProxy } : {}),
      ...(httpsProxy ? { httpsProxy } : {}),
      ...(noProxy ? { noProxy } : {}),
    });
    const res = await undici.request(url, {
      method: 'GET',
      headers,
      signal: controller.signal,
      dispatcher: proxyDispatcher as InstanceType<typeof undici.EnvHttpProxyAgent>,
    });
    return {
      status: res.statusCode,
      headers: flatten(res.headers),
      body: res.body as AsyncIterable<Buffer>,
      discard: () => res.body.destroy(),
    };
  };
};

function describeCause(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const inner = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${typeof code === 'string' ? `${code} ` : ''}${error.message}${inner}`;
  }
  return String(error);
}

/** The real client. `env` decides the proxy; it defaults to the process environment. */
export function createHttpClient(env: NodeJS.ProcessEnv = process.env): HttpClient {
  const transport = proxyConfigured(env) ? undiciTransport(env) : nodeTransport;
  return {
    async get(startUrl, options) {
      let timedOut = false;
      let abortCurrent: (() => void) | undefined;
      const timer = setTimeout(() => {
        timedOut = true;
        abortCurrent?.();
      }, options.timeoutMs);
      const onAbort = (abort: () => void) => {
        abortCurrent = abort;
        if (timedOut) abort();
      };
      const fail = (message: string, cause?: unknown): RickError =>
        new RickError('FEED_ERROR', `${options.what}: ${message}`, {
          hint: 'nothing was changed; the next timer tick tries again',
          cause,
        });
      try {
        const origin = new URL(startUrl).origin;
        let url = new URL(startUrl);
        for (let hop = 0; ; hop++) {
          if (url.protocol !== 'https:' && url.protocol !== 'http:') {
            throw fail(`refusing to fetch ${url.protocol} URL ${url.href}`);
          }
          // Credentials are for the feed's origin only, never for a redirect target.
          const headers = { ...options.headers };
          if (url.origin !== origin) delete headers.authorization;
          const res = await transport(url, headers, onAbort);
          if (res.status >= 300 && res.status < 400 && res.status !== 304) {
            res.discard();
            const location = res.headers.location;
            if (!location) throw fail(`HTTP ${res.status} without a Location`);
            if (hop >= MAX_REDIRECTS) throw fail(`more than ${MAX_REDIRECTS} redirects`);
            url = new URL(location, url);
            continue;
          }
          const declared = Number(res.headers['content-length']);
          if (Number.isFinite(declared) && declared > options.maxBytes) {
            res.discard();
            throw fail(
              `server announces ${declared} bytes, more than the cap of ${options.maxBytes}`,
            );
          }
          const chunks: Buffer[] = [];
          let total = 0;
          for await (const chunk of res.body) {
            total += chunk.length;
            if (total > options.maxBytes) {
              res.discard();
              throw fail(`more than the cap of ${options.maxBytes} bytes; download cut off`);
            }
            chunks.push(chunk);
          }
          return { status: res.status, headers: res.headers, body: Buffer.concat(chunks) };
        }
      } catch (error) {
        if (timedOut) {
          throw fail(
            `no complete answer within ${options.timeoutMs / 1000} s; download cut off`,
            error,
          );
        }
        if (error instanceof RickError) throw error;
        throw fail(`request failed: ${describeCause(error)}`, error);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
