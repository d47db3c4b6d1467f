/**
 * A loopback release feed in the shape of GitHub's releases API: the list at
 * /repos/acme/releases/releases (with an ETag, and 304 for a matching
 * If-None-Match) and every asset at /assets/<name>. Tests add releases,
 * tamper with assets or make the server misbehave, and read back the
 * requests it saw.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';

export interface FeedAssetSpec {
  name: string;
  data: Buffer;
  /** The `size` the API announces; defaults to the real size. */
  announcedSize?: number;
  /** Serve the bytes one at a time, this many ms apart. */
  trickleMs?: number;
}

export interface FeedReleaseSpec {
  tag: string;
  draft?: boolean;
  prerelease?: boolean;
  assets: FeedAssetSpec[];
}

export interface SeenRequest {
  path: string;
  status: number;
  headers: IncomingMessage['headers'];
}

export class FeedServer {
  releases: FeedReleaseSpec[] = [];
  /** When set, the list endpoint answers this raw body (HTML, truncated JSON…). */
  rawList: string | undefined;
  readonly seen: SeenRequest[] = [];
  private server: Server;
  private base = '';

  private constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  static async start(): Promise<FeedServer> {
    const feed = new FeedServer();
    feed.server.listen(0, '127.0.0.1');
    await once(feed.server, 'listening');
    feed.base = `http://127.0.0.1:${(feed.server.address() as AddressInfo).port}`;
    return feed;
  }

  get listUrl(): string {
    return `${this.base}/repos/acme/releases/releases`;
  }

  /** Adds a release holding a bundle file and (unless `signature: false`) its .sig. */
  async addBundle(
    bundlePath: string,
    options: {
      tag?: string;
      prerelease?: boolean;
      draft?: boolean;
      signature?: boolean;
      signaturePath?: string;
    } = {},
  ): Promise<FeedReleaseSpec> {
    const name = basename(bundlePath);
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

  /** Requests for assets (not the list). */
  assetRequests(): SeenRequest[] {
    return this.seen.filter((r) => r.path.startsWith('/assets/'));
  }

  listBody(): string {
    if (this.rawList !== undefined) return this.rawList;
    return JSON.stringify(
      this.releases.map((r, i) => ({
        id: i + 1,
        tag_name: r.tag,
        name: r.tag,
        draft: r.draft ?? false,
        prerelease: r.prerelease ?? false,
        assets: r.assets.map((a, j) => ({
          id: (i + 1) * 100 + j,
          name: a.name,
          size: a.announcedSize ?? a.data.length,
          content_type: 'application/octet-stream',
          url: `${this.base}/assets/${a.name}`,
          browser_download_url: `${this.base}/download/${a.name}`,
        })),
      })),
    );
  }

  /** The ETag is derived from the body, as a server's would be. */
  etag(): string {
    let h = 0;
    for (const ch of this.listBody()) h = (h * 31 + ch.charCodeAt(0)) | 0;
    return `W/"${(h >>> 0).toString(16)}"`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const done = (status: number) => this.seen.push({ path, status, headers: req.headers });
    if (path === '/repos/acme/releases/releases') {
      const etag = this.etag();
      if (req.headers['if-none-match'] === etag) {
        done(304);
        res.writeHead(304, { etag });
        res.end();
        return;
      }
      done(200);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', etag });
      res.end(this.listBody());
      return;
    }
    const name = decodeURIComponent(path.replace(/^\/assets\//, ''));
    const asset = path.startsWith('/assets/')
      ? this.releases.flatMap((r) => r.assets).find((a) => a.name === name)
      : undefined;
    if (!asset) {
      done(404);
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"message":"Not Found"}');
      return;
    }
    done(200);
    if (asset.trickleMs !== undefined) {
      res.writeHead(200, { 'content-length': String(asset.data.length) });
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
    // No Content-Length: the client must count the bytes itself.
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(asset.data);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close').catch(() => {});
  }
}
