#!/usr/bin/env node
// npm run bench:update
//
// The timer's no-op tick as a whole process: the single-file installer runs
// `rick-install update --root DIR` against a loopback feed that answers 304
// (the host already has the newest release), compared with a bare
// `node -e ''` start. Runs alternate so both see the same machine load; the
// figure is the ratio of the medians. Target: at most 1.5×.
//
// With --feed index the host follows a signed release index instead
// (FEED=…/index.json): the no-op tick is then one conditional GET of
// index.json answered 304, against the cached decision's recheck times.
//
// Options: --runs N (default 21), --installer PATH (default dist/installer/rick-install.cjs),
//          --feed github|index (default github)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeDropped, hostEnv } from './host-env.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const runs = Number(arg('--runs', '21'));
const installer = resolve(arg('--installer', join(repo, 'dist/installer/rick-install.cjs')));
const feedKind = arg('--feed', 'github');
if (!['github', 'index'].includes(feedKind)) {
  console.error('bench: --feed is github or index');
  process.exit(2);
}
if (!existsSync(installer)) {
  console.error(`bench: ${installer} is missing; run npm run build first`);
  process.exit(1);
}

// A feed of 40 releases of the followed bundle, the newest already installed.
const versions = Array.from({ length: 40 }, (_, i) => `1.${i}.0`);
let requests = 0;
let notModified = 0;
// The signed index variant: one release of demo, the newest, already installed.
const indexFiles = new Map();
let publicKeyArmored = '';
if (feedKind === 'index') {
  const { generateSigningKey, readSigningKey, signDetached } = await import(
    join(repo, 'dist/bundle/openpgp.js')
  );
  const { planIndex } = await import(join(repo, 'dist/build/release-index.js'));
  const { serializeIndex } = await import(join(repo, 'dist/bundle/release-index.js'));
  const generated = await generateSigningKey({
    name: 'bench',
    date: new Date(Date.now() - 86_400_000),
  });
  publicKeyArmored = generated.publicKeyArmored;
  const key = await readSigningKey(generated.privateKeyArmored, undefined);
  const { index } = planIndex(
    undefined,
    {
      add: versions.map((v) => ({
        bundle: 'demo',
        version: v,
        channel: 'stable',
        sha256: 'a'.repeat(64),
        size: 1000,
        files: { bundle: `demo-${v}.tgz`, signature: `demo-${v}.tgz.sig` },
        location: `v${v}/`,
      })),
      rollout: [],
      yank: [],
      unyank: [],
    },
    new Date(),
    7 * 86_400_000,
  );
  const text = Buffer.from(serializeIndex(index));
  indexFiles.set('/index.json', text);
  indexFiles.set('/index.json.sig', Buffer.from(await signDetached(text, key)));
}

const server = createServer((req, res) => {
  requests++;
  const base = `http://127.0.0.1:${server.address().port}`;
  if (feedKind === 'index') {
    const data = indexFiles.get(req.url);
    if (!data) {
      res.writeHead(404);
      res.end();
      return;
    }
    const etag = req.url === '/index.json' ? '"index-v1"' : '"sig-v1"';
    if (req.headers['if-none-match'] === etag) {
      notModified++;
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', etag });
    res.end(data);
    return;
  }
  if (req.headers['if-none-match'] === '"feed-v1"') {
    notModified++;
    res.writeHead(304, { etag: '"feed-v1"' });
    res.end();
    return;
  }
  const body = versions
    .map((v) => ({
      tag_name: `v${v}`,
      draft: false,
      prerelease: false,
      assets: ['', '.sig'].map((ext) => ({
        name: `demo-${v}.tgz${ext}`,
        size: 1000,
        url: `${base}/assets/demo-${v}.tgz${ext}`,
        browser_download_url: `${base}/download/demo-${v}.tgz${ext}`,
      })),
    }))
    .reverse();
  res.writeHead(200, { 'content-type': 'application/json', etag: '"feed-v1"' });
  res.end(JSON.stringify(body));
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const feedUrl =
  feedKind === 'index'
    ? `http://127.0.0.1:${server.address().port}/index.json`
    : `http://127.0.0.1:${server.address().port}/repos/acme/releases/releases`;

const measured = hostEnv();
const root = await mkdtemp(join(tmpdir(), 'rick-bench-update-'));
await mkdir(join(root, 'etc/rick/keys'), { recursive: true });
if (feedKind === 'index') {
  await writeFile(join(root, 'etc/rick/keys/release.asc'), publicKeyArmored, { mode: 0o644 });
}
await mkdir(join(root, 'var/lib/rick'), { recursive: true });
await writeFile(
  join(root, 'etc/rick/rick.conf'),
  `FEED=${feedUrl}\nBUNDLES=demo\nCHANNEL=stable\nRANGE=^1\n`,
);
const newest = versions.at(-1);
await writeFile(
  join(root, 'var/lib/rick/state.json'),
  `${JSON.stringify({ schemaVersion: 1, lastGeneration: 1, live: 1, keepGenerations: 3, bundles: { demo: { installed: newest, highest: newest, quarantined: [] } }, history: [] }, null, 2)}\n`,
);

/** CPU seconds (user + system) of this process's reaped children, from /proc (Linux). */
function childrenCpu() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // cutime and cstime are fields 16 and 17 of stat(5), in clock ticks (100 per second).
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return Number.NaN;
  }
}

function run(command, argv) {
  return new Promise((resolvePromise, reject) => {
    const started = process.hrtime.bigint();
    // No proxy variables: the tick talks to the loopback feed directly.
    const env = { ...measured.env };
    for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy']) delete env[name];
    const child = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== 0) reject(new Error(`${command} ${argv.join(' ')} exited ${code}: ${stderr}`));
      else resolvePromise({ ms, stdout });
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

try {
  const tick = [installer, 'update', '--root', root];
  // The first tick reads the whole feed (200) and records its ETag.
  const first = await run(process.execPath, tick);
  if (!/nothing new/.test(first.stdout)) throw new Error(`unexpected first tick: ${first.stdout}`);
  const bare = [];
  const noop = [];
  let bareCpu = 0;
  let noopCpu = 0;
  for (let i = 0; i < runs; i++) {
    let cpu = childrenCpu();
    bare.push((await run(process.execPath, ['-e', ''])).ms);
    bareCpu += childrenCpu() - cpu;
    cpu = childrenCpu();
    const t = await run(process.execPath, tick);
    noopCpu += childrenCpu() - cpu;
    if (!/unchanged since the last check/.test(t.stdout)) {
      throw new Error(`the tick was not a no-op: ${t.stdout}`);
    }
    noop.push(t.ms);
  }
  if (notModified !== runs) throw new Error(`expected ${runs} answers 304, saw ${notModified}`);
  const mb = median(bare);
  const mn = median(noop);
  console.log(
    `rick-install update, no-op tick (${feedKind === 'index' ? 'signed index' : 'GitHub API feed'} answers 304), ${runs} runs each, median:`,
  );
  console.log(`  ${describeDropped(measured.dropped)}`);
  console.log(`  bare node -e '':         ${mb.toFixed(1)} ms`);
  console.log(`  rick-install update:     ${mn.toFixed(1)} ms`);
  console.log(`  ratio:                   ${(mn / mb).toFixed(2)}x (target <= 1.5x)`);
  // CPU time is less sensitive than wall time to other load on the machine.
  console.log(
    `  CPU (user+sys) per run:  ${((bareCpu / runs) * 1000).toFixed(1)} ms vs ${((noopCpu / runs) * 1000).toFixed(1)} ms, ratio ${(noopCpu / bareCpu).toFixed(2)}x`,
  );
  console.log(`  feed requests: ${requests} (${notModified} answered 304)`);
} finally {
  server.close();
  await rm(root, { recursive: true, force: true });
}
