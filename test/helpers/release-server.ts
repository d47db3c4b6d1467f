/**
 * Static release downloads on loopback, shaped like GitHub's (what a host
 * following a signed index talks to). Two origins, as on GitHub:
 *
 *   "github"  /acme/releases/releases/latest/download/<file>
 *               → 302 to /acme/releases/releases/download/<latest tag>/<file>
 *             /acme/releases/releases/download/<tag>/<file>
 *               → 302 to the object store, another origin, at a signed,
 *                 expiring URL (/github-production-release-asset-2e65be/<id>/<uuid>?X-Amz-…)
 *   "objects" serves the bytes, with an ETag, and 304 to a matching If-None-Match
 *
 * The redirects carry what GitHub's asset redirects carry (an empty
 * text/html body and a Location with an S3-style signed query), after the
 * recorded exchanges of GitHub's asset endpoint; the URL layout is that of
 * `https://github.com/OWNER/NAME/releases/latest/download/FILE`.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  origin: 'github' | 'objects';
  path: string;
  status: number;
  headers: IncomingMessage['headers'];
}

const REPO = '/acme/releases/releases';

export class ReleaseServer {
  /** Files per release tag. */
  readonly releases = new Map<string, Map<string, Buffer>>();
  /** The tag `releases/latest` points at. */
  latest: string | undefined;
  readonly seen: SeenRequest[] = [];
  private readonly github: Server;
  private readonly objects: Server;
  private githubBase = '';
  private objectsBase = '';
  /** Object ids, stable per tag and file, like asset ids. */
  private readonly ids = new Map<string, number>();

  private constructor() {
    this.github = createServer((req, res) => this.handleGithub(req, res));
    this.objects = createServer((req, res) => this.handleObjects(req, res));
  }

  static async start(): Promise<ReleaseServer> {
    const s = new ReleaseServer();
    s.github.listen(0, '127.0.0.1');
    s.objects.listen(0, '127.0.0.1');
    await Promise.all([once(s.github, 'listening'), once(s.objects, 'listening')]);
    s.githubBase = `http://127.0.0.1:${(s.github.address() as AddressInfo).port}`;
    s.objectsBase = `http://127.0.0.1:${(s.objects.address() as AddressInfo).port}`;
    return s;
  }

  /** `https://github.com/acme/releases/releases/latest/download/<file>`, here. */
  latestUrl(file: string): string {
    return `${this.githubBase}${REPO}/latest/download/${file}`;
  }

  /** Puts (or replaces, like `gh release upload --clobber`) a file of a release. */
  put(tag: string, name: string, data: Buffer | string): void {
    let files = this.releases.get(tag);
    if (!files) {
      files = new Map();
      this.releases.set(tag, files);
    }
    files.set(name, Buffer.from(data));
  }

  /** Removes a file of a release: it answers 404 from then on. */
  remove(tag: string, name: string): void {
    this.releases.get(tag)?.delete(name);
  }

  get(tag: string, name: string): Buffer {
    const data = this.releases.get(tag)?.get(name);
    if (!data) throw new Error(`no ${name} in ${tag}`);
    return data;
  }

  /** Requests that reached an origin, optionally only those for one file name. */
  requests(origin?: SeenRequest['origin'], file?: string): SeenRequest[] {
    return this.seen.filter(
      (r) =>
        (origin === undefined || r.origin === origin) &&
        (file === undefined || r.path.endsWith(`/${file}`) || r.path.includes(`/${file}?`)),
    );
  }

  private record(req: IncomingMessage, origin: SeenRequest['origin'], status: number): void {
    this.seen.push({ origin, path: req.url ?? '/', status, headers: req.headers });
  }

  private notFound(req: IncomingMessage, res: ServerResponse, origin: SeenRequest['origin']) {
    this.record(req, origin, 404);
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('Not Found');
  }

  private redirect(req: IncomingMessage, res: ServerResponse, location: string): void {
    this.record(req, 'github', 302);
    res.writeHead(302, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': '0',
      location,
    });
    res.end();
  }

  private handleGithub(req: IncomingMessage, res: ServerResponse): void {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/');
    const latest = new RegExp(`^${REPO}/latest/download/([^/]+)$`).exec(path);
    if (latest && this.latest !== undefined) {
      this.redirect(req, res, `${REPO}/download/${this.latest}/${latest[1]}`);
      return;
    }
    const download = new RegExp(`^${REPO}/download/([^/]+)/([^/]+)$`).exec(path);
    if (download && this.releases.get(download[1]!)?.has(download[2]!)) {
      const key = `${download[1]}/${download[2]}`;
      if (!this.ids.has(key)) this.ids.set(key, 300_000_000 + this.ids.size);
      const id = this.ids.get(key);
      const uuid = createHash('sha256').update(key).digest('hex').slice(0, 32);
      const query = [
        'X-Amz-Algorithm=AWS4-HMAC-SHA256',
        'X-Amz-Credential=AKIAIWNJYAX4CSVEH53A%2F20260110%2Fus-east-1%2Fs3%2Faws4_request',
        'X-Amz-Date=20260110T000000Z',
        'X-Amz-Expires=300',
        `X-Amz-Signature=${createHash('sha256').update(`sig ${key}`).digest('hex')}`,
        'X-Amz-SignedHeaders=host',
        `response-content-disposition=attachment%3B%20filename%3D${encodeURIComponent(download[2]!)}`,
        'response-content-type=application%2Foctet-stream',
      ].join('&');
      this.redirect(
        req,
        res,
        `${this.objectsBase}/github-production-release-asset-2e65be/${id}/${uuid}?${query}`,
      );
      return;
    }
    this.notFound(req, res, 'github');
  }

  private handleObjects(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.objectsBase);
    const [, , id] = url.pathname.split('/');
    const disposition = url.searchParams.get('response-content-disposition') ?? '';
    const file = /filename=(.+)$/.exec(disposition)?.[1] ?? '';
    const key = [...this.ids.entries()].find(([, v]) => String(v) === id)?.[0];
    const [tag, name] = key?.split('/') ?? [];
    const data = tag && name && name === file ? this.releases.get(tag)?.get(name) : undefined;
    if (!data) {
      this.notFound(req, res, 'objects');
      return;
    }
    const etag = `"0x${createHash('sha256').update(data).digest('hex').slice(0, 16).toUpperCase()}"`;
    if (req.headers['if-none-match'] === etag) {
      this.record(req, 'objects', 304);
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    this.record(req, 'objects', 200);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(data.length),
      etag,
      'last-modified': 'Sat, 10 Jan 2026 00:00:00 GMT',
    });
    res.end(data);
  }

  async stop(): Promise<void> {
    for (const server of [this.github, this.objects]) {
      server.closeAllConnections();
      server.close();
    }
    await Promise.all([once(this.github, 'close'), once(this.objects, 'close')]).catch(() => {});
  }
}
