/**
 * A loopback release feed that behaves as GitHub's releases API does,
 * modelled on recorded api.github.com exchanges
 * (/work/shared/feed-real/github-recorded.json and octokit/fixtures, MIT),
 * never on memory:
 *
 * - two origins, as on GitHub: the API (`api`, the list at
 *   /repos/acme/releases/releases and each asset's API URL) and the storage
 *   the downloads are redirected to (`objects`, another port, so another
 *   origin);
 * - the list as recorded: release and asset objects with every recorded
 *   field (asset `state` included), `per_page` (default 30, at most 100) and
 *   `page`, a `Link` header with `next`, `last`, `first`, `prev` in the
 *   recorded form, a strong ETag of the body (and of the Authorization it
 *   varies on) and 304 for a matching If-None-Match, and the recorded
 *   headers (`x-ratelimit-*`, cache-control, vary, …);
 * - an asset's API URL asked for `application/octet-stream` answers 302 to
 *   the objects origin with an empty text/html body (as the recorded
 *   archive download does), JSON otherwise; `browser_download_url` redirects
 *   there too;
 * - the primary rate limit as documented: 60 requests per hour without a
 *   token (a 304 counts), 5,000 with one (a 304 does not); when used up,
 *   403 with `x-ratelimit-remaining: 0` and GitHub's JSON message. A
 *   secondary limit (403 with `retry-after`) or any status with GitHub's
 *   message can be made to answer once.
 *
 * Tests add releases, tamper with assets or make the server misbehave, and
 * read back the requests each origin saw.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';

export interface FeedAssetSpec {
  name: string;
  data: Buffer;
  /** The `size` the API announces; defaults to the real size. */
  announcedSize?: number;
  /** GitHub's upload state; `uploaded` unless set (GitHub also says `open`). */
  state?: string;
  /** Serve the bytes one at a time, this many ms apart. */
  trickleMs?: number;
  /**
   * Serve only the first N bytes, then close the connection as a body
   * delimited by the connection's end (no Content-Length): a mirror or
   * proxy that gave up looks exactly like a complete file.
   */
  cutAfter?: number;
}

export interface FeedReleaseSpec {
  tag: string;
  draft?: boolean;
  prerelease?: boolean;
  assets: FeedAssetSpec[];
  /** Where the list's `url` of each asset points: the API (GitHub's way) or straight at storage. */
  assetUrls?: 'api' | 'objects';
}

export interface SeenRequest {
  origin: 'api' | 'objects';
  path: string;
  /** The query string, `?…` or empty. */
  query: string;
  status: number;
  headers: IncomingMessage['headers'];
}

/** A refusal to answer once, with GitHub's JSON message. */
export interface CannedAnswer {
  status: number;
  headers?: Record<string, string>;
  message: string;
}

const DOCS = 'https://docs.github.com/rest/releases/releases#list-releases';
const REPO = 'acme/releases';
const LIST_PATH = `/repos/${REPO}/releases`;
const ASSET_API = `/repos/${REPO}/releases/assets/`;
const DOWNLOAD = `/${REPO}/releases/download/`;
const STORAGE = '/github-production-release-asset-2e65be/';

/** The headers of every recorded api.github.com answer, less the per-answer ones. */
const recordedHeaders = {
  server: 'GitHub.com',
  'x-github-media-type': 'github.v3; format=json',
  'access-control-expose-headers':
    'ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id, Deprecation, Sunset',
  'access-control-allow-origin': '*',
  'strict-transport-security': 'max-age=31536000; includeSubdomains; preload',
  'x-frame-options': 'deny',
  'x-content-type-options': 'nosniff',
  'x-xss-protection': '0',
  'referrer-policy': 'origin-when-cross-origin, strict-origin-when-cross-origin',
  'content-security-policy': "default-src 'none'",
};

const uploader = {
  login: 'octokit-fixture-user-a',
  id: 31898046,
  node_id: 'MDQ6VXNlcjMxODk4MDQ2',
  type: 'User',
  site_admin: false,
};

interface Limit {
  limit: number;
  used: number;
  /** UTC epoch seconds. */
  reset: number;
}

export class FeedServer {
  /** Newest first, as GitHub lists them. */
  releases: FeedReleaseSpec[] = [];
  /** When set, the list endpoint answers this raw body (HTML, truncated JSON…). */
  rawList: string | undefined;
  /** Answered once, instead of the next API request. */
  refuseNext: CannedAnswer | undefined;
  /** Rewrites the list's Link header (a feed that points elsewhere). */
  rewriteLink: ((link: string) => string) | undefined;
  /** Where an asset's API URL redirects to; default: its place in storage on the objects origin. */
  redirectAssets: ((asset: FeedAssetSpec) => string) | undefined;
  /** The primary rate limits: per address without a token, per token with one. */
  readonly anonymous: Limit;
  readonly authenticated: Limit;
  readonly seen: SeenRequest[] = [];
  private readonly ids = new Map<FeedAssetSpec, number>();
  private apiBase = '';
  private objectsBase = '';

  private constructor(
    private readonly api: Server,
    private readonly objects: Server,
  ) {
    const reset = Math.floor(Date.now() / 1000) + 3600;
    this.anonymous = { limit: 60, used: 0, reset };
    this.authenticated = { limit: 5000, used: 0, reset };
    api.on('request', (req, res) => this.handleApi(req, res));
    objects.on('request', (req, res) => this.handleObjects(req, res));
  }

  /**
   * Starts both origins on loopback; `tls` serves both over https with that
   * certificate, as GitHub serves the API and its storage.
   */
  static async start(options: { tls?: { key: Buffer; cert: Buffer } } = {}): Promise<FeedServer> {
    const api = options.tls ? createTlsServer(options.tls) : createServer();
    const feed = new FeedServer(api, options.tls ? createTlsServer(options.tls) : createServer());
    for (const server of [api, feed.objects]) {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
    }
    const port = (s: Server) => (s.address() as AddressInfo).port;
    feed.apiBase = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port(api)}`;
    feed.objectsBase = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port(feed.objects)}`;
    return feed;
  }

  get listUrl(): string {
    return `${this.apiBase}${LIST_PATH}`;
  }

  get apiOrigin(): string {
    return this.apiBase;
  }

  get objectsOrigin(): string {
    return this.objectsBase;
  }

  /** Adds a release (newest) holding a bundle file and, unless `signature: false`, its .sig. */
  async addBundle(
    bundlePath: string,
    options: {
      tag?: string;
      prerelease?: boolean;
      draft?: boolean;
      signature?: boolean;
      signaturePath?: string;
      /** Publish the file under this asset name instead of its own. */
      assetName?: string;
    } = {},
  ): Promise<FeedReleaseSpec> {
    const name = options.assetName ?? basename(bundlePath);
    const version = /-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\.tgz$/.exec(name)?.[1] ?? name;
    const assets: FeedAssetSpec[] = [{ name, data: await readFile(bundlePath) }];
    if (options.signature !== false) {
      assets.push({
        name: `${name}.sig`,
        data: await readFile(options.signaturePath ?? `${bundlePath}.sig`),
      });
    }
    const release: FeedReleaseSpec = {
      tag: options.tag ?? `v${version}`,
      prerelease: options.prerelease ?? false,
      draft: options.draft ?? false,
      assets,
    };
    this.releases.unshift(release);
    return release;
  }

  asset(name: string): FeedAssetSpec {
    for (const r of this.releases) {
      const a = r.assets.find((x) => x.name === name);
      if (a) return a;
    }
    throw new Error(`no asset ${name}`);
  }

  /** Requests for release assets, on either origin (not the list). */
  assetRequests(): SeenRequest[] {
    return this.seen.filter((r) => r.path !== LIST_PATH);
  }

  /** Requests for the list. */
  listRequests(): SeenRequest[] {
    return this.seen.filter((r) => r.path === LIST_PATH);
  }

  private assetId(asset: FeedAssetSpec): number {
    let id = this.ids.get(asset);
    if (id === undefined) {
      id = 71989167 + this.ids.size;
      this.ids.set(asset, id);
    }
    return id;
  }

  private findAsset(id: number): { asset: FeedAssetSpec; release: FeedReleaseSpec } | undefined {
    for (const release of this.releases) {
      for (const asset of release.assets) {
        if (this.ids.get(asset) === id) return { asset, release };
      }
    }
    return undefined;
  }

  private assetJson(release: FeedReleaseSpec, asset: FeedAssetSpec) {
    const id = this.assetId(asset);
    const apiUrl = `${this.apiBase}${ASSET_API}${id}`;
    return {
      url: release.assetUrls === 'objects' ? `${this.objectsBase}${STORAGE}${id}` : apiUrl,
      id,
      node_id: `RA_kwDOHrjuzc4ESnev${id}`,
      name: asset.name,
      label: '',
      uploader,
      content_type: 'application/octet-stream',
      state: asset.state ?? 'uploaded',
      size: asset.announcedSize ?? asset.data.length,
      download_count: 0,
      created_at: '2022-07-19T04:40:23Z',
      updated_at: '2022-07-19T04:40:24Z',
      browser_download_url: `${this.objectsBase}${DOWNLOAD}${release.tag}/${asset.name}`,
    };
  }

  private releaseJson(release: FeedReleaseSpec, index: number) {
    const id = 72286832 + this.releases.length - index;
    const base = `${this.apiBase}/repos/${REPO}/releases/${id}`;
    return {
      url: base,
      assets_url: `${base}/assets`,
      upload_url: `${base}/assets{?name,label}`,
      html_url: `${this.objectsBase}/${REPO}/releases/tag/${release.tag}`,
      id,
      author: uploader,
      node_id: `RE_kwDOHrjuzc4ETwJw${id}`,
      tag_name: release.tag,
      target_commitish: 'b8b58742c92c098cae4d8c5ea7390d552faba041',
      name: `Version ${release.tag}`,
      draft: release.draft ?? false,
      prerelease: release.prerelease ?? false,
      created_at: '2022-07-19T04:40:17Z',
      published_at: '2022-07-19T04:40:21Z',
      assets: release.assets.map((a) => this.assetJson(release, a)),
      tarball_url: `${this.apiBase}/repos/${REPO}/tarball/${release.tag}`,
      zipball_url: `${this.apiBase}/repos/${REPO}/zipball/${release.tag}`,
      body: `Release ${release.tag}`,
    };
  }

  /** One page of the list, and the number of pages, as GitHub paginates. */
  listPage(query: URLSearchParams): { body: string; pages: number; perPage: number; page: number } {
    const perPage = Math.min(Math.max(Number(query.get('per_page') ?? 30) || 30, 1), 100);
    const page = Math.max(Number(query.get('page') ?? 1) || 1, 1);
    const pages = Math.max(Math.ceil(this.releases.length / perPage), 1);
    if (this.rawList !== undefined) return { body: this.rawList, pages: 1, perPage, page };
    const slice = this.releases
      .map((r, i) => this.releaseJson(r, i))
      .slice((page - 1) * perPage, page * perPage);
    return { body: JSON.stringify(slice), pages, perPage, page };
  }

  /**
   * The ETag of a page: strong, a quoted sha256 as recorded. GitHub answers
   * `Vary: Accept, Authorization, Cookie`, and a token's ETag is its own.
   */
  etag(query = new URLSearchParams({ per_page: '100' }), authorization = ''): string {
    return this.etagOf(this.listPage(query).body, authorization);
  }

  private etagOf(body: string, authorization: string): string {
    return `"${createHash('sha256').update(`${authorization}\n${body}`).digest('hex')}"`;
  }

  private link(perPage: number, page: number, pages: number): string | undefined {
    const url = (p: number) => `<${this.apiBase}${LIST_PATH}?per_page=${perPage}&page=${p}>`;
    const parts: string[] = [];
    if (page > 1) parts.push(`${url(page - 1)}; rel="prev"`);
    if (page < pages) parts.push(`${url(page + 1)}; rel="next"`, `${url(pages)}; rel="last"`);
    if (page > 1) parts.push(`${url(1)}; rel="first"`);
    return parts.length ? parts.join(', ') : undefined;
  }

  private rateHeaders(limit: Limit): Record<string, string> {
    return {
      'x-ratelimit-limit': String(limit.limit),
      'x-ratelimit-remaining': String(Math.max(limit.limit - limit.used, 0)),
      'x-ratelimit-reset': String(limit.reset),
      'x-ratelimit-used': String(limit.used),
      'x-ratelimit-resource': 'core',
    };
  }

  private handleApi(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.apiBase);
    const limit = req.headers.authorization ? this.authenticated : this.anonymous;
    let status = 0;
    res.on('finish', () =>
      this.seen.push({
        origin: 'api',
        path: url.pathname,
        query: url.search,
        status,
        headers: req.headers,
      }),
    );
    const answer = (code: number, headers: Record<string, string>, body = '') => {
      status = code;
      res.writeHead(code, {
        ...recordedHeaders,
        date: new Date().toUTCString(),
        'x-github-request-id': `0683:13C6:8C649E:18BFAE9:${this.seen.length.toString(16)}`,
        ...this.rateHeaders(limit),
        ...headers,
      });
      res.end(body);
    };
    const json = (code: number, value: unknown, headers: Record<string, string> = {}) =>
      answer(
        code,
        {
          'content-type': 'application/json; charset=utf-8',
          vary: 'Accept, Authorization, Cookie, X-GitHub-OTP',
          ...headers,
        },
        typeof value === 'string' ? value : JSON.stringify(value),
      );

    if (limit.used >= limit.limit) {
      const who = req.headers.authorization ? 'user ID 31898046' : '127.0.0.1';
      json(403, {
        message: `API rate limit exceeded for ${who}. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)`,
        documentation_url:
          'https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting',
      });
      return;
    }
    limit.used++;
    if (this.refuseNext) {
      const canned = this.refuseNext;
      this.refuseNext = undefined;
      json(canned.status, { message: canned.message, documentation_url: DOCS }, canned.headers);
      return;
    }

    if (url.pathname === LIST_PATH) {
      const { body, pages, perPage, page } = this.listPage(url.searchParams);
      const etag = this.etagOf(body, req.headers.authorization ?? '');
      const plain = this.link(perPage, page, pages);
      const link = plain && this.rewriteLink ? this.rewriteLink(plain) : plain;
      const headers: Record<string, string> = {
        etag,
        'cache-control': 'private, max-age=60, s-maxage=60',
        ...(link ? { link } : {}),
      };
      if (req.headers['if-none-match'] === etag) {
        // GitHub counts a 304 against the limit unless the request was authorized.
        if (req.headers.authorization) limit.used--;
        answer(304, headers);
        return;
      }
      json(200, body, headers);
      return;
    }
    if (url.pathname.startsWith(ASSET_API)) {
      const found = this.findAsset(Number(url.pathname.slice(ASSET_API.length)));
      if (!found) {
        json(404, { message: 'Not Found', documentation_url: DOCS });
        return;
      }
      if (req.headers.accept === 'application/octet-stream') {
        const id = this.assetId(found.asset);
        const location =
          this.redirectAssets?.(found.asset) ??
          `${this.objectsBase}${STORAGE}${id}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=${createHash('sha256').update(String(id)).digest('hex')}&response-content-disposition=attachment%3B%20filename%3D${encodeURIComponent(found.asset.name)}&response-content-type=application%2Foctet-stream`;
        // As the recorded 302 of an archive download: empty body, text/html.
        answer(302, {
          location,
          'content-type': 'text/html;charset=utf-8',
          'content-length': '0',
          'cache-control': 'public, must-revalidate, max-age=0',
        });
        return;
      }
      json(200, this.assetJson(found.release, found.asset));
      return;
    }
    json(404, { message: 'Not Found', documentation_url: DOCS });
  }

  private handleObjects(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.objectsBase);
    let status = 0;
    res.on('finish', () => this.seen.push(seenAt(status)));
    res.on('close', () => {
      if (!res.writableFinished) this.seen.push(seenAt(status));
    });
    const seenAt = (code: number): SeenRequest => ({
      origin: 'objects',
      path: url.pathname,
      query: url.search,
      status: code,
      headers: req.headers,
    });
    if (url.pathname.startsWith(DOWNLOAD)) {
      const [tag, name] = url.pathname.slice(DOWNLOAD.length).split('/');
      const asset = this.releases
        .find((r) => r.tag === tag)
        ?.assets.find((a) => a.name === decodeURIComponent(name ?? ''));
      status = asset ? 302 : 404;
      if (asset) res.writeHead(302, { location: `${STORAGE}${this.assetId(asset)}` });
      else res.writeHead(404);
      res.end();
      return;
    }
    const found = url.pathname.startsWith(STORAGE)
      ? this.findAsset(Number(url.pathname.slice(STORAGE.length)))
      : undefined;
    if (!found) {
      status = 404;
      res.writeHead(404, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code></Error>');
      return;
    }
    const { asset } = found;
    status = 200;
    if (asset.cutAfter !== undefined) {
      // A body delimited by the end of the connection, ended early.
      res.useChunkedEncodingByDefault = false;
      res.shouldKeepAlive = false;
      res.writeHead(200, { 'content-type': 'application/octet-stream', connection: 'close' });
      res.end(asset.data.subarray(0, asset.cutAfter));
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(asset.data.length),
    });
    if (asset.trickleMs !== undefined) {
      let i = 0;
      const timer = setInterval(() => {
        if (i >= asset.data.length) {
          clearInterval(timer);
          res.end();
          return;
        }
        res.write(asset.data.subarray(i, i + 1));
        i++;
      }, asset.trickleMs);
      res.on('close', () => clearInterval(timer));
      return;
    }
    res.end(asset.data);
  }

  async stop(): Promise<void> {
    for (const server of [this.api, this.objects]) {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => {});
    }
  }
}
