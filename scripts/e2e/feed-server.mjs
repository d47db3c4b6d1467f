#!/usr/bin/env node
// A GitHub-shaped release feed for the end-to-end test host, on loopback.
//
//   node feed-server.mjs DIR HOST:PORT OWNER/NAME
//
// Every directory DIR/<tag>/ is a published release; its files are the
// release's assets. GET /repos/OWNER/NAME/releases answers the releases API
// shape (newest first, with a strong ETag and 304 on If-None-Match); each
// asset is served at its API URL (Accept: application/octet-stream) and at a
// browser download URL, as GitHub does. A release is published by renaming a
// complete directory into DIR, so a request never sees half of one. Every
// request is logged (the journal of the unit running this server).
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
      assets.push({
        id: ++id,
        name,
        size: s.size,
        content_type: 'application/octet-stream',
        url: `${base}/repos/${repo}/releases/assets/${tag}/${name}`,
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
  return `${JSON.stringify(list, null, 2)}\n`;
}

function sendAsset(res, tag, name) {
  if (!safe.test(tag) || !safe.test(name)) return res.writeHead(404).end();
  const file = join(dir, tag, name);
  stat(file).then(
    (s) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': s.size });
      createReadStream(file).pipe(res);
    },
    () => res.writeHead(404).end(),
  );
}

const server = createServer(async (req, res) => {
  res.on('finish', () => {
    process.stdout.write(`${req.method} ${req.url} -> ${res.statusCode}\n`);
  });
  const url = new URL(req.url ?? '/', base);
  const parts = url.pathname.split('/').filter(Boolean);
  try {
    if (url.pathname === `/repos/${repo}/releases`) {
      const body = await releases();
      const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`;
      if (req.headers['if-none-match'] === etag) return res.writeHead(304, { etag }).end();
      return res
        .writeHead(200, { 'content-type': 'application/json; charset=utf-8', etag })
        .end(body);
    }
    const apiAsset = `/repos/${repo}/releases/assets/`;
    if (url.pathname.startsWith(apiAsset) && parts.length === 7) {
      return sendAsset(res, parts[5], parts[6]);
    }
    const download = `/${repo}/releases/download/`;
    if (url.pathname.startsWith(download) && parts.length === 6) {
      return sendAsset(res, parts[4], parts[5]);
    }
    res.writeHead(404).end();
  } catch (error) {
    process.stdout.write(`error: ${error}\n`);
    res.writeHead(500).end();
  }
});
server.listen(Number(port), host, () => {
  process.stdout.write(`feed for ${repo} from ${dir} on ${base}\n`);
});
