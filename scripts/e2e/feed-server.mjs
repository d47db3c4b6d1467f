#!/usr/bin/env node
// A GitHub-shaped release feed for the end-to-end test host, on loopback,
// shaped as test/helpers/feed-server.ts is (on recorded api.github.com
// exchanges, /work/shared/feed-real/github-recorded.json).
//
//   node feed-server.mjs DIR HOST:PORT OWNER/NAME
//
// Every directory DIR/<tag>/ is a published release; its files are the
// release's assets (state "uploaded"). GET /repos/OWNER/NAME/releases
// answers the releases API shape, newest first, `per_page` (default 30, at
// most 100) and `page` with a Link header, a strong ETag and 304 on
// If-None-Match, and the x-ratelimit-* headers. Each asset's API URL
// (Accept: application/octet-stream) and its browser download URL answer
// 302 to storage on another origin, HOST:PORT+1, as GitHub's do. A release
// is published by renaming a complete directory into DIR, so a request
// never sees half of one. Every request is logged (the journal of the unit
// running this server).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';

const [dir, listen, repo] = process.argv.slice(2);
if (!dir || !listen || !repo) {
  process.stderr.write('usage: feed-server.mjs DIR HOST:PORT OWNER/NAME\n');
  process.exit(2);
}
const [host, port] = listen.split(/:(?=\d+$)/);
const base = `http://${listen}`;
// Downloads are redirected to storage on another origin, as on GitHub.
const storagePort = Number(port) + 1;
const storage = `http://${host}:${storagePort}`;
const reset = Math.floor(Date.now() / 1000) + 3600;
const safe = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

function compareTags(a, b) {
  const pa = a
    .replace(/^v/, '')
    .split(/[.-]/)
    .map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  const pb = b
    .replace(/^v/, '')
    .split(/[.-]/)
    .map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if (pa[i] === pb[i]) continue;
    if (pa[i] === undefined) return -1;
    if (pb[i] === undefined) return 1;
    return pa[i] < pb[i] ? -1 : 1;
  }
  return 0;
}

/** Every release, newest first, with a stable id for each asset (its tag and name). */
async function releases() {
  const tags = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && safe.test(e.name))
    .map((e) => e.name)
    .sort(compareTags)
    .reverse();
  const list = [];
  let id = 1000;
  for (const tag of tags) {
    const assets = [];
    for (const name of (await readdir(join(dir, tag))).sort()) {
      if (!safe.test(name)) continue;
      const s = await stat(join(dir, tag, name));
      const assetId = `${tag}~${name}`;
      assets.push({
        url: `${base}/repos/${repo}/releases/assets/${encodeURIComponent(assetId)}`,
        id: ++id,
        name,
        label: '',
        content_type: 'application/octet-stream',
        state: 'uploaded',
        size: s.size,
        download_count: 0,
        browser_download_url: `${base}/${repo}/releases/download/${tag}/${name}`,
      });
    }
    list.push({
      id: ++id,
      tag_name: tag,
      name: tag,
      draft: false,
      prerelease: false,
      html_url: `${base}/${repo}/releases/tag/${tag}`,
      assets,
    });
  }
  return list;
}

function storageUrl(tag, name) {
  return `${storage}/objects/${tag}/${name}?X-Amz-Algorithm=AWS4-HMAC-SHA256`;
}

function sendAsset(res, tag, name) {
  if (!safe.test(tag ?? '') || !safe.test(name ?? '')) return res.writeHead(404).end();
  const file = join(dir, tag, name);
  stat(file).then(
    (s) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': s.size });
      createReadStream(file).pipe(res);
    },
    () => res.writeHead(404).end(),
  );
}

let used = 0;
const rateHeaders = () => ({
  'x-ratelimit-limit': '60',
  'x-ratelimit-remaining': String(Math.max(60 - used, 0)),
  'x-ratelimit-reset': String(reset),
  'x-ratelimit-used': String(used),
  'x-ratelimit-resource': 'core',
});

const server = createServer(async (req, res) => {
  res.on('finish', () => {
    process.stdout.write(`${req.method} ${req.url} -> ${res.statusCode}\n`);
  });
  const url = new URL(req.url ?? '/', base);
  const parts = url.pathname.split('/').filter(Boolean);
  try {
    if (url.pathname === `/repos/${repo}/releases`) {
      // Nothing is refused here: the tests do not exhaust 60 an hour.
      used++;
      const all = await releases();
      const perPage = Math.min(
        Math.max(Number(url.searchParams.get('per_page') ?? 30) || 30, 1),
        100,
      );
      const page = Math.max(Number(url.searchParams.get('page') ?? 1) || 1, 1);
      const pages = Math.max(Math.ceil(all.length / perPage), 1);
      const body = `${JSON.stringify(all.slice((page - 1) * perPage, page * perPage), null, 2)}\n`;
      const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
      const link = (p) => `<${base}/repos/${repo}/releases?per_page=${perPage}&page=${p}>`;
      const links = [];
      if (page > 1) links.push(`${link(page - 1)}; rel="prev"`);
      if (page < pages) links.push(`${link(page + 1)}; rel="next"`, `${link(pages)}; rel="last"`);
      if (page > 1) links.push(`${link(1)}; rel="first"`);
      const headers = {
        etag,
        'cache-control': 'private, max-age=60, s-maxage=60',
        ...rateHeaders(),
        ...(links.length ? { link: links.join(', ') } : {}),
      };
      if (req.headers['if-none-match'] === etag) return res.writeHead(304, headers).end();
      return res
        .writeHead(200, { 'content-type': 'application/json; charset=utf-8', ...headers })
        .end(body);
    }
    const apiAsset = `/repos/${repo}/releases/assets/`;
    if (url.pathname.startsWith(apiAsset) && parts.length === 6) {
      used++;
      const [tag, name] = decodeURIComponent(parts[5]).split('~');
      return res
        .writeHead(302, {
          location: storageUrl(tag, name),
          'content-length': '0',
          ...rateHeaders(),
        })
        .end();
    }
    const download = `/${repo}/releases/download/`;
    if (url.pathname.startsWith(download) && parts.length === 6) {
      return res.writeHead(302, { location: storageUrl(parts[4], parts[5]) }).end();
    }
    res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
    res.end('{"message":"Not Found"}');
  } catch (error) {
    process.stdout.write(`error: ${error}\n`);
    res.writeHead(500).end();
  }
});
server.listen(Number(port), host, () => {
  process.stdout.write(`feed for ${repo} from ${dir} on ${base}\n`);
});

const objects = createServer((req, res) => {
  res.on('finish', () => {
    process.stdout.write(`storage: ${req.method} ${req.url} -> ${res.statusCode}\n`);
  });
  const parts = new URL(req.url ?? '/', storage).pathname.split('/').filter(Boolean);
  if (parts[0] === 'objects' && parts.length === 3) return sendAsset(res, parts[1], parts[2]);
  res.writeHead(404).end();
});
objects.listen(storagePort, host, () => {
  process.stdout.write(`storage for ${repo} on ${storage}\n`);
});
