#!/usr/bin/env node
// npm run bench:fleet
//
// A fleet following a signed release index with a three-wave rollout.
// 10,000 simulated hosts, each a real host tree (rick.conf, trusted key,
// /etc/machine-id, state.json) on which the real update tick runs
// (dist/feed/update-tick.js: cache, conditional request, gpgv on the index,
// selection, size and sha256 checks, cache writes). What is simulated is the
// process edge only: the clock (each host ticks hourly at its own fixed
// offset in the hour, as rick-update.timer's RandomizedDelaySec=1h with
// FixedRandomDelay=true does; the offset is derived from the machine-id),
// HTTP (an in-memory static server with ETags and 304s, which counts every
// request), and the install (it records the new version in state.json as the
// pipeline would; bench:install measures the pipeline itself).
//
// Reports: the share of hosts updated over time against the plan (the
// percentage of the wave in force), requests per host per tick by kind, and
// API calls (none: nothing but the index and its files is fetched).
//
// Every tick is a real one: each host verifies the index with gpgv when it
// first fetches it (it has no copy yet), as a real fleet does; deciding again
// at a wave's start on the unchanged index (a 304) uses the copy that host
// verified and kept (docs/release-index.md).
//
// Options: --hosts N (default 10000), --dir DIR where the host trees go
// (default /dev/shm when it exists: the trees' fsyncs are not what is
// measured), --concurrency N (default 4): ticks of different hosts in flight
// at once, as the hosts of a fleet run at once; a host's own ticks never
// overlap and run in time order. The simulated clock, not the wall clock,
// decides everything reported except the milliseconds per tick, which grow
// with the concurrency and the machine's load.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const hosts = Number(arg('--hosts', '10000'));
const treesIn = arg('--dir', existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
const concurrency = Math.max(1, Number(arg('--concurrency', '4')));
const loadAtStart = loadavg();

const { runUpdate } = await import(join(repo, 'dist/feed/update-tick.js'));
const { generateSigningKey, readSigningKey, signDetached } = await import(
  join(repo, 'dist/bundle/openpgp.js')
);
const { planIndex } = await import(join(repo, 'dist/build/release-index.js'));
const { serializeIndex } = await import(join(repo, 'dist/bundle/release-index.js'));

const HOUR = 3_600_000;
const START = Date.parse('2026-01-01T00:00:00Z');
const END = START + 11 * HOUR;
// Three waves: 10% an hour in, 40% at five hours, everyone at nine.
const WAVES = [
  { afterMs: 1 * HOUR, percent: 10 },
  { afterMs: 5 * HOUR, percent: 40 },
  { afterMs: 9 * HOUR, percent: 100 },
];
const planAt = (t) => {
  let p = 0;
  for (const w of WAVES) if (t >= START + w.afterMs) p = w.percent;
  return p;
};

// The publisher: a signed bundle stand-in (the install is simulated, so any
// bytes do; the tick checks them against the index's size and sha256) and
// the signed index listing it with the waves.
const generated = await generateSigningKey({
  name: 'fleet bench',
  date: new Date(START - 86_400_000),
});
const key = await readSigningKey(generated.privateKeyArmored, undefined);
const bundle = Buffer.alloc(48 * 1024, 7);
const files = new Map();
files.set('/rel/v1.1.0/demo-1.1.0.tgz', bundle);
files.set('/rel/v1.1.0/demo-1.1.0.tgz.sig', Buffer.from(await signDetached(bundle, key)));
const { index } = planIndex(
  undefined,
  {
    add: [
      {
        bundle: 'demo',
        version: '1.1.0',
        channel: 'stable',
        sha256: createHash('sha256').update(bundle).digest('hex'),
        size: bundle.length,
        files: { bundle: 'demo-1.1.0.tgz', signature: 'demo-1.1.0.tgz.sig' },
        location: 'v1.1.0/',
      },
    ],
    waves: WAVES,
    rollout: [],
    yank: [],
    unyank: [],
  },
  new Date(START),
  7 * 24 * HOUR,
);
const indexText = Buffer.from(serializeIndex(index));
files.set('/rel/index.json', indexText);
files.set('/rel/index.json.sig', Buffer.from(await signDetached(indexText, key)));
const etags = new Map(
  [...files].map(([p, d]) => [p, `"${createHash('sha256').update(d).digest('hex').slice(0, 16)}"`]),
);
const INDEX_URL = 'https://releases.example/rel/index.json';

// The static server at the process edge, counting what each tick asks.
const totals = { requests: 0, bytes: 0, api: 0, byKind: {} };
const kindOf = (path) =>
  path.endsWith('index.json')
    ? 'index'
    : path.endsWith('index.json.sig')
      ? 'index signature'
      : path.endsWith('.tgz')
        ? 'bundle'
        : 'bundle signature';
const countingHttp = (tickRequests) => ({
  async get(url, options) {
    const { pathname, hostname } = new URL(url);
    if (hostname === 'api.github.com' || pathname.includes('/repos/')) totals.api++;
    const data = files.get(pathname);
    const etag = etags.get(pathname);
    const status = !data ? 404 : options.headers['if-none-match'] === etag ? 304 : 200;
    const body = status === 200 ? data : Buffer.alloc(0);
    const kind = `${kindOf(pathname)} ${status}`;
    tickRequests.push(kind);
    totals.requests++;
    totals.bytes += body.length;
    totals.byKind[kind] = (totals.byKind[kind] ?? 0) + 1;
    return { status, headers: { etag }, body };
  },
});

// The hosts.
const base = await mkdtemp(join(treesIn, 'rick-bench-fleet-'));
const stateOf = (version) =>
  `${JSON.stringify({ schemaVersion: 1, lastGeneration: 1, live: 1, keepGenerations: 3, bundles: { demo: { installed: version, highest: version, quarantined: [] } }, history: [] }, null, 2)}\n`;
const fleet = [];
const setupStarted = Date.now();
for (let i = 0; i < hosts; i++) {
  const root = join(base, String(i));
  const machineId = createHash('md5').update(`fleet host ${i}`).digest('hex');
  await mkdir(join(root, 'etc/rick/keys'), { recursive: true });
  await mkdir(join(root, 'var/lib/rick'), { recursive: true });
  await writeFile(
    join(root, 'etc/rick/rick.conf'),
    `FEED=${INDEX_URL}\nBUNDLES=demo\nMETRICS_FILE=\n`,
  );
  await writeFile(join(root, 'etc/rick/keys/release.asc'), generated.publicKeyArmored);
  await writeFile(join(root, 'etc/machine-id'), `${machineId}\n`);
  await writeFile(join(root, 'var/lib/rick/state.json'), stateOf('1.0.0'));
  // The timer's fixed offset in the hour.
  const offset =
    createHash('sha256').update(`${machineId}rick-update.timer`).digest().readUInt32BE(0) %
    3_600_000;
  fleet.push({ root, offset, updatedAt: undefined });
}
const setupSeconds = (Date.now() - setupStarted) / 1000;

// Every tick of every host, in time order.
const ticks = [];
for (const [h, host] of fleet.entries()) {
  for (let t = START + host.offset; t < END; t += HOUR) ticks.push([t, h]);
}
ticks.sort((a, b) => a[0] - b[0]);

const perTick = new Map();
const tickMs = new Map();
let failures = 0;
const started = Date.now();
/** One tick of one host at time t, as the timer would start it. */
async function tick(t, h) {
  const host = fleet[h];
  const requests = [];
  const tickStarted = performance.now();
  try {
    await runUpdate(
      { root: host.root },
      {
        http: countingHttp(requests),
        env: {},
        now: () => new Date(t),
        log: () => {},
        warn: () => {},
        install: async (request) => {
          await writeFile(join(request.root, 'var/lib/rick/state.json'), stateOf('1.1.0'));
          host.updatedAt = t;
        },
      },
    );
  } catch (error) {
    failures++;
    if (failures <= 3) console.error(`tick of host ${h} failed: ${error.message}`);
  }
  const shape = requests.join(' + ') || 'none';
  perTick.set(shape, (perTick.get(shape) ?? 0) + 1);
  tickMs.set(shape, (tickMs.get(shape) ?? 0) + performance.now() - tickStarted);
}
try {
  // Ticks started in time order, up to --concurrency at once, never two of
  // one host (its next tick must see what its previous one wrote); progress
  // on stderr.
  const inFlight = new Map();
  for (const [i, [t, h]] of ticks.entries()) {
    if (inFlight.has(h)) await inFlight.get(h);
    while (inFlight.size >= concurrency) await Promise.race(inFlight.values());
    inFlight.set(
      h,
      tick(t, h).finally(() => inFlight.delete(h)),
    );
    if (i % 5000 === 4999) {
      const done = fleet.filter((f) => f.updatedAt !== undefined).length;
      console.error(
        `  … ${new Date(t).toISOString().slice(11, 16)} plan ${planAt(t)}%, updated ${((100 * done) / hosts).toFixed(2)}% after ${i + 1} ticks, ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
    }
  }
  await Promise.all(inFlight.values());
  const elapsed = (Date.now() - started) / 1000;

  // The share updated against the plan, every five minutes.
  const updated = fleet
    .map((f) => f.updatedAt)
    .filter((t) => t !== undefined)
    .sort((a, b) => a - b);
  let worstPlateau = 0;
  let worstOver = 0;
  const lags = [];
  const rows = [];
  for (let t = START; t <= END - 1; t += 5 * 60_000) {
    let n = 0;
    while (n < updated.length && updated[n] <= t) n++;
    const share = (100 * n) / hosts;
    const plan = planAt(t);
    worstOver = Math.max(worstOver, share - plan);
    // A wave's plateau: an hour after it started, every host has ticked once.
    const wave = [...WAVES].reverse().find((w) => t >= START + w.afterMs);
    if (wave && t >= START + wave.afterMs + HOUR)
      worstPlateau = Math.max(worstPlateau, Math.abs(share - plan));
    if (t % HOUR === 0)
      rows.push(
        `    ${new Date(t).toISOString().slice(11, 16)}  plan ${String(plan).padStart(3)}%  updated ${share.toFixed(1).padStart(5)}%`,
      );
  }
  for (const w of WAVES) {
    const at = START + w.afterMs;
    let t = at;
    for (; t < END; t += 60_000) {
      let n = 0;
      while (n < updated.length && updated[n] <= t) n++;
      if (Math.abs((100 * n) / hosts - w.percent) <= 2) break;
    }
    lags.push(`${w.percent}%: ${((t - at) / 60_000).toFixed(0)} min`);
  }

  const noop = [...perTick].filter(([shape]) => shape === 'index 304');
  console.log(
    `rick-install update, ${hosts} hosts following a signed index with three waves (${WAVES.map((w) => `${w.percent}% at +${w.afterMs / HOUR}h`).join(', ')})`,
  );
  console.log(
    `  ${ticks.length} ticks simulated over 11 h, each host hourly at its own offset; ${failures} failed; ${elapsed.toFixed(0)} s (+${setupSeconds.toFixed(0)} s to make the host trees), ${concurrency} ticks at once`,
  );
  const fmt = (l) => l.map((x) => x.toFixed(2)).join(' ');
  console.log(`  load average at the start ${fmt(loadAtStart)}, at the end ${fmt(loadavg())}`);
  console.log('  share updated, on the hour:');
  for (const row of rows) console.log(row);
  console.log(
    `  largest gap to the plan once a wave's hour has passed: ${worstPlateau.toFixed(2)} points (target <= 2)`,
  );
  console.log(
    `  largest overshoot of the plan at any time: ${Math.max(0, worstOver).toFixed(2)} points`,
  );
  console.log(
    `  time from a wave's start to within 2 points of it: ${lags.join(', ')} (hosts tick hourly)`,
  );
  console.log('  requests per tick, by what the tick did:');
  for (const [shape, count] of [...perTick].sort((a, b) => b[1] - a[1])) {
    console.log(
      `    ${String(count).padStart(7)} ticks: ${shape} (${(tickMs.get(shape) / count).toFixed(1)} ms each, wall clock, ${concurrency} at once)`,
    );
  }
  const verified = [...perTick]
    .filter(([shape]) => shape.includes('index signature 200'))
    .reduce((n, [, count]) => n + count, 0);
  console.log(
    `  index signatures checked with gpgv: ${verified} (a host's first fetch of the index; none when deciding again on a 304)`,
  );
  console.log(
    `  no-op ticks: ${noop[0]?.[1] ?? 0} of ${ticks.length}, each one index request answered 304 (${indexText.length} bytes when it changes)`,
  );
  console.log(
    `  requests in all: ${totals.requests} (${(totals.requests / ticks.length).toFixed(2)} per tick), ${(totals.bytes / 1024 / 1024).toFixed(1)} MiB; API calls: ${totals.api}`,
  );
} finally {
  await rm(base, { recursive: true, force: true });
}
