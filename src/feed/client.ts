/**
 * The HTTP edge of `rick-install update`: GETs with a byte cap and an overall
 * deadline (a server that trickles bytes is cut off at the deadline, not per
 * read), redirects followed by hand, and the usual proxy variables honoured.
 *
 * What crosses the edge is held to a few rules:
 * - credentials go to one origin only (the feed's), and never again once a
 *   redirect has left it;
 * - once on https, never back to plain http, loopback included: a redirect
 *   from an https origin to plain http is refused wherever it leads;
 * - what an https feed names is fetched over https (a plain http URL on
 *   loopback aside: tests and local mirrors);
 * - a body that ends short (a connection closed early, fewer bytes than the
 *   feed announced, the deadline) is a download error, never a file handed
 *   on to the signature check;
 * - an error answer's body is read (bounded) so that the caller can explain
 *   it, whatever the cap on the expected body.
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
  /**
   * An Authorization header value, sent only to requests on `origin`, and
   * not at all after a redirect has left that origin.
   */
  credentials?: { authorization: string; origin: string };
  /** A successful body may not exceed this many bytes (Content-Length or counted). */
  maxBytes: number;
  /** A successful body must have exactly this many bytes (what the feed announced). */
  expectBytes?: number;
  /** Milliseconds for the whole exchange, redirects and body included. */
  timeoutMs: number;
  /** What is being fetched, for messages ("releases list", "authentik-1.2.0.tgz"). */
  what: string;
  /** Refuse plain http from the start (loopback aside): set for what an https feed names. */
  tls?: boolean;
}

export interface HttpResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string | undefined>;
  /** The body; for an answer other than 2xx, at most ERROR_BODY_BYTES of it. */
  body: Buffer;
}

/** The port `update` depends on; tests use the real one against a loopback server. */
export interface HttpClient {
  get(url: string, options: HttpGetOptions): Promise<HttpResponse>;
}

const MAX_REDIRECTS = 5;
/** How much of an error answer is read: enough for GitHub's JSON message. */
export const ERROR_BODY_BYTES = 64 * 1024;

/** Loopback hosts, where plain http carries nothing off the machine. */
export function isLoopback(url: URL): boolean {
  return (
    url.hostname === 'localhost' ||
    url.hostname === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(url.hostname)
  );
}

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
      discard: () => {
        // undici's body reports its destruction as an error; nobody waits for it here.
        res.body.on('error', () => {});
        res.body.destroy();
      },
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
      const cutOff = () =>
        fail(`no complete answer within ${options.timeoutMs / 1000} s; download cut off`);
      // What the body being read promised, to tell a connection closed early.
      let reading: { received: number; declared: number | undefined } | undefined;
      try {
        let url = new URL(startUrl);
        let secure = options.tls === true;
        // An https hop was made: from here on only https, whatever the host.
        let onHttps = false;
        let leftOrigin = false;
        for (let hop = 0; ; hop++) {
          if (url.protocol !== 'https:' && url.protocol !== 'http:') {
            throw fail(`refusing to fetch ${url.protocol} URL ${url.href}`);
          }
          if (url.protocol === 'https:') {
            secure = true;
            onHttps = true;
          } else if (onHttps) {
            throw fail(`refusing to leave https for plain http: ${url.href}`);
          } else if (secure && !isLoopback(url)) {
            throw fail(
              hop === 0
                ? `refusing plain http for ${url.href}: the feed is served over https`
                : `refusing to leave https for plain http: ${url.href}`,
            );
          }
          // Credentials are for one origin only, and never for wherever a redirect leads.
          const headers = { ...options.headers };
          const credentials = options.credentials;
          if (credentials && url.origin !== credentials.origin) leftOrigin = true;
          if (credentials && !leftOrigin) headers.authorization = credentials.authorization;
          const res = await transport(url, headers, onAbort);
          if (res.status >= 300 && res.status < 400 && res.status !== 304) {
            res.discard();
            const location = res.headers.location;
            if (!location) throw fail(`HTTP ${res.status} without a Location`);
            if (hop >= MAX_REDIRECTS) throw fail(`more than ${MAX_REDIRECTS} redirects`);
            url = new URL(location, url);
            continue;
          }
          const ok = res.status >= 200 && res.status < 300;
          const declared = Number(res.headers['content-length']);
          const announced = Number.isFinite(declared) ? declared : undefined;
          if (ok && announced !== undefined && announced > options.maxBytes) {
            res.discard();
            throw fail(
              `server announces ${announced} bytes, more than the cap of ${options.maxBytes}`,
            );
          }
          const chunks: Buffer[] = [];
          let total = 0;
          reading = { received: 0, declared: announced };
          for await (const chunk of res.body) {
            total += chunk.length;
            reading.received = total;
            if (!ok && total > ERROR_BODY_BYTES) {
              // Enough to explain the error; the rest is not needed.
              res.discard();
              break;
            }
            if (ok && total > options.maxBytes) {
              res.discard();
              throw fail(`more than the cap of ${options.maxBytes} bytes; download cut off`);
            }
            chunks.push(chunk);
          }
          reading = undefined;
          // A transport that ends the body quietly when cut off must not pass a short file on.
          if (timedOut) throw cutOff();
          if (ok && announced !== undefined && total < announced) {
            throw fail(`connection closed after ${total} of ${announced} bytes; download cut off`);
          }
          if (ok && options.expectBytes !== undefined && total !== options.expectBytes) {
            throw fail(
              `received ${total} bytes, not the ${options.expectBytes} the feed announced; download cut off`,
            );
          }
          return { status: res.status, headers: res.headers, body: Buffer.concat(chunks) };
        }
      } catch (error) {
        if (timedOut) throw cutOff();
        if (error instanceof RickError) throw error;
        if (reading !== undefined) {
          const { received, declared } = reading;
          throw fail(
            `connection closed after ${received}${declared === undefined ? '' : ` of ${declared}`} bytes; download cut off (${describeCause(error)})`,
            error,
          );
        }
        throw fail(`request failed: ${describeCause(error)}`, error);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
