#!/usr/bin/env node
// npm run bench:upgrade [-- --sizes 0,256,1024 --runs 1 --keep --journal]
//
// Downtime of a version-bump upgrade on the end-to-end test host (a Debian 13
// systemd host booted with systemd-nspawn, scripts/e2e/testhost.sh; root
// only). The real authentik bundle with the stand-in image is installed, then
// upgraded to a release whose server and worker both move to a new image tag
// from the host's loopback registry. A probe inside the host sends
// GET /-/health/live/ every 100 ms; the downtime is the window from the first
// probe that gets no 2xx to the first 2xx after the last one.
//
// Measured for each image size (--sizes, MiB of random padding added to the
// stand-in, which no compression shrinks), with the new image removed from
// the host's store before each upgrade:
//   restart     `systemctl restart` of the server with nothing changed: the
//               stand-in container's own stop and start, the floor;
//   pre-pull    rick-install as it ships: images pulled before the swap;
//   no pre-pull the same with the pull before the swap turned off
//               (RICK_BENCH_SKIP_PREPULL=1, read for benchmarks only), so
//               the container's start downloads the image (in the rolling
//               restart of server and worker, the worker's start, which
//               comes first, downloads it while the server still serves).
// Goal: pre-pull downtime at most the restart floor + 2 s, not growing with
// the image's size. --journal prints, after each upgrade, the journal of the
// pod and its containers during it (where the downtime goes).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const sizes = arg('--sizes', '0,256,1024')
  .split(',')
  .map((s) => Number(s.trim()));
const runs = Number(arg('--runs', '1'));
const keep = args.includes('--keep');
const showJournal = args.includes('--journal');
const JOURNAL_UNITS = [
  'authentik-pod.service',
  'authentik-server.service',
  'authentik-worker.service',
];
if (sizes.some((s) => !Number.isInteger(s) || s < 0) || !Number.isInteger(runs) || runs < 1) {
  console.error('bench: --sizes takes MiB numbers separated by commas, --runs a count');
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('bench: must run as root (systemd-nspawn, nsenter, podman)');
  process.exit(1);
}
const rickBundle = join(repo, 'dist/cli/rick-bundle.js');
const installer = join(repo, 'dist/installer/rick-install.cjs');
for (const f of [rickBundle, installer]) {
  if (!existsSync(f)) {
    console.error(`bench: ${f} is missing; run npm run build first`);
    process.exit(1);
  }
}

const testhost = join(repo, 'scripts/e2e/testhost.sh');
const IMAGE = 'localhost:5000/authentik-standin';
const HEALTH_URL = 'http://127.0.0.1:9000/-/health/live/';
const PROBE_INTERVAL_MS = 100;
/** After the upgrade ends, the service must answer 2xx this long for the window to be closed. */
const SETTLE_MS = 3000;
const SKIP_PREPULL = 'RICK_BENCH_SKIP_PREPULL';

/** Runs a program; resolves with its output, rejects on a non-zero exit. */
function run(file, argv, options = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0 && !options.allowFail) {
        reject(new Error(`${[file, ...argv].join(' ')} exited ${code}\n${stdout}${stderr}`));
      } else resolvePromise({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

const say = (line) => console.error(`bench: ${line}`);

// --- the test host ------------------------------------------------------------
const runDir = await mkdtemp('/var/tmp/rick-bench-upgrade.');
const work = await mkdtemp('/var/tmp/rick-bench-upgrade-work.');
let pid;
async function teardown() {
  if (keep) {
    say(`--keep: stopping but keeping ${runDir} and ${work}`);
    await run(testhost, ['stop', runDir], { allowFail: true });
    return;
  }
  await run(testhost, ['destroy', runDir], { allowFail: true });
  await rm(work, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  spawnSync(testhost, ['stop', runDir], { stdio: 'ignore' });
  process.exit(130);
});

const inHost = (argv, options) => run('nsenter', ['-t', String(pid), '-a', ...argv], options);

try {
  say(`creating the test host in ${runDir}`);
  await run(testhost, ['create', runDir]);
  const booted = await run(testhost, ['boot', runDir]);
  pid = Number(booted.stdout.trim().split('\n').at(-1));
  const infra = Object.fromEntries(
    (await readFile(join(runDir, 'infra.env'), 'utf8'))
      .split('\n')
      .map((l) => /^([A-Z_]+)=(.*)$/.exec(l))
      .filter(Boolean)
      .map((m) => [m[1], m[2].replace(/^'(.*)'$/, '$1')]),
  );

  // Trust, secrets and the installer, as bootstrap.sh would leave them.
  await run('node', [rickBundle, 'keygen', '--name', 'rick bench', '--out', join(work, 'key')]);
  const pub = await readFile(join(work, 'key/signing-key.pub.asc'));
  await inHost(
    ['sh', '-c', 'install -d -m 0755 /etc/rick/keys && cat >/etc/rick/keys/release.asc'],
    {
      input: pub,
    },
  );
  await inHost(
    [
      'sh',
      '-c',
      'install -d -m 0700 /etc/rick/secrets && umask 077 && cat >/etc/rick/secrets/authentik.env',
    ],
    {
      input: `authentik_db_password='${infra.PG_PASSWORD}'\nauthentik_valkey_password='${infra.VALKEY_PASSWORD}'\nauthentik_secret_key='bench-not-a-real-key'\n`,
    },
  );
  await inHost(['sh', '-c', 'cat >/root/rick-install.cjs'], { input: await readFile(installer) });
  // The bundle's Caddy site reaches the host's Caddy as bootstrap.sh --caddy wires it.
  await inHost([
    'sh',
    '-c',
    "printf '\\n%s\\n' 'import {$RICK_CADDY_SITES:/etc/caddy/rick}/*.caddy' >>/etc/caddy/Caddyfile",
  ]);
  await inHost(['sh', '-c', 'cat >/root/probe.mjs'], { input: probeSource() });

  let version = 0;
  /** Builds, signs and copies into the host a bundle naming IMAGE:tag; returns its path there. */
  async function bundleFor(tag) {
    version++;
    const v = `1.0.${version}`;
    const vars = join(work, `vars-${v}.yaml`);
    await writeFile(
      vars,
      `authentik_image: "${IMAGE}"\nauthentik_version: "${tag}"\nauthentik_site_address: "http://auth.bench.test"\n`,
    );
    await run('node', [
      rickBundle,
      'build',
      join(repo, 'bundles/authentik'),
      '--version',
      v,
      '--vars',
      vars,
      '--out',
      work,
      '--installer',
      installer,
    ]);
    const tgz = join(work, `authentik-${v}.tgz`);
    await run('node', [rickBundle, 'sign', tgz, '--key', join(work, 'key/signing-key.asc')]);
    const path = `/root/bundles/authentik-${v}.tgz`;
    await inHost(['sh', '-c', `mkdir -p /root/bundles && cat >${path}`], {
      input: await readFile(tgz),
    });
    await inHost(['sh', '-c', `cat >${path}.sig`], { input: await readFile(`${tgz}.sig`) });
    return path;
  }

  /** Runs fn while the probe runs; returns the downtime window and fn's result. */
  async function probed(fn) {
    const probe = spawn(
      'nsenter',
      ['-t', String(pid), '-a', 'node', '/root/probe.mjs', HEALTH_URL, String(PROBE_INTERVAL_MS)],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    probe.stdout.on('data', (d) => {
      out += d;
    });
    await new Promise((r) => setTimeout(r, 1000));
    const started = Date.now();
    const result = await fn();
    const took = Date.now() - started;
    // Until the service has answered 2xx for SETTLE_MS in a row (at most 5 minutes).
    const deadline = Date.now() + 300_000;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const samples = parse(out);
      const lastBad = samples.findLastIndex((s) => !ok(s));
      const tail = samples.slice(lastBad + 1);
      if (tail.length && tail.at(-1).t - tail[0].t >= SETTLE_MS) break;
      if (Date.now() > deadline) throw new Error('the service did not answer 2xx again in 5 min');
    }
    probe.stdin.end();
    await new Promise((r) => probe.on('close', r));
    const samples = parse(out);
    const flipAt = result?.flipAt;
    // Probes that failed before the flip: the old version answering slowly
    // while the machine pulls (no restart has happened yet).
    const beforeSwap =
      flipAt === undefined ? 0 : samples.filter((x) => x.t < flipAt && !ok(x)).length;
    const afterSwap = flipAt === undefined ? samples : samples.filter((x) => x.t >= flipAt);
    return {
      ...window(samples),
      afterSwapMs: window(afterSwap).downMs,
      beforeSwap,
      took,
      result,
      samples,
    };
  }

  /**
   * Runs rick-install in the host; resolves with its output and the time it
   * said the new generation is live (the host shares this machine's clock).
   */
  const installCmd = (path, env = []) =>
    new Promise((resolvePromise, reject) => {
      const child = spawn('nsenter', [
        '-t',
        String(pid),
        '-a',
        'env',
        ...env,
        'rick-install',
        path,
      ]);
      let out = '';
      let flipAt;
      const onData = (d) => {
        out += d;
        if (flipAt === undefined && /generation \d+ is live/.test(out)) flipAt = Date.now();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', reject);
      child.on('close', (code) => {
        if (code === 0) resolvePromise({ out, flipAt });
        else reject(new Error(`rick-install ${path} exited ${code}\n${out}`));
      });
    });

  const results = [];
  let first = true;
  for (const size of sizes) {
    const tags = [`bench-${size}m-a`, `bench-${size}m-b`];
    say(`image size +${size} MiB: publishing ${tags.map((t) => `${IMAGE}:${t}`).join(', ')}`);
    for (const tag of tags) {
      await inHost([
        'sh',
        '/usr/local/lib/rick-e2e/publish-image.sh',
        '--pad-mb',
        String(size),
        `${IMAGE}:${tag}`,
      ]);
    }
    const imageSize = (
      await inHost([
        'sh',
        '-c',
        `curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' http://localhost:5000/v2/authentik-standin/manifests/${tags[0]}`,
      ])
    ).stdout;
    const layers = JSON.parse(imageSize).layers ?? [];
    const compressed = layers.reduce((n, l) => n + l.size, 0);
    // The starting point, not measured: the first tag live.
    let current = 0;
    const base = await bundleFor(tags[current]);
    if (first) {
      await inHost(['node', '/root/rick-install.cjs', base]);
      first = false;
    } else await installCmd(base);
    const row = {
      size,
      compressedMiB: compressed / 2 ** 20,
      restart: [],
      prepull: [],
      noprepull: [],
    };
    for (let i = 0; i < runs; i++) {
      const restart = await probed(() =>
        inHost(['systemctl', 'restart', 'authentik-server.service']),
      );
      row.restart.push(restart);
      say(`+${size} MiB restart: down ${restart.downMs} ms (${restart.failures} failed probes)`);
      for (const mode of ['prepull', 'noprepull']) {
        const next = 1 - current;
        const ref = `${IMAGE}:${tags[next]}`;
        const path = await bundleFor(tags[next]);
        await inHost(['podman', 'rmi', '--ignore', ref]);
        const env = mode === 'noprepull' ? [`${SKIP_PREPULL}=1`] : [];
        const since = Math.floor(Date.now() / 1000);
        const m = await probed(() => installCmd(path, env));
        current = next;
        if (showJournal) {
          const journal = await inHost([
            'journalctl',
            '--no-pager',
            '-o',
            'short-precise',
            `--since=@${since}`,
            ...JOURNAL_UNITS.flatMap((u) => ['-u', u]),
          ]);
          say(`+${size} MiB ${mode}: journal of ${JOURNAL_UNITS.join(', ')}\n${journal.stdout}`);
          say(`+${size} MiB ${mode}: installer output\n${m.result.out}`);
          say(`+${size} MiB ${mode}: probes\n${probeSummary(m.samples, m.result.flipAt)}`);
        }
        // `image REF: pulled in 1.2s (…)`, the installer's line for a pull before the swap.
        const pulledBefore = m.result.out.includes(`image ${ref}: pulled in `);
        row[mode].push({ ...m, pulledBefore });
        say(
          `+${size} MiB ${mode}: down ${m.downMs} ms (${m.failures} failed probes, ${m.beforeSwap} of them before the swap), after the swap ${m.afterSwapMs} ms, install took ${m.took} ms${pulledBefore ? ', pulled before the swap' : ''}`,
        );
      }
    }
    results.push(row);
  }

  // --- report ----------------------------------------------------------------
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const fmt = (ms) => `${(ms / 1000).toFixed(1)} s`;
  console.log(
    `\ndowntime of a version-bump upgrade (server and worker to a new image), probe every ${PROBE_INTERVAL_MS} ms, median of ${runs} run(s)`,
  );
  console.log(
    '(down: first probe without 2xx to the first 2xx after the last one; after swap: the same from the moment the installer said the generation is live; failed before swap: probes the old version did not answer while the image was pulled)',
  );
  console.log(
    'padding   | image (compressed) | restart (floor) | pre-pull: down / after swap / failed before swap / install | no pre-pull: down / install',
  );
  for (const r of results) {
    const m = (xs, k) => median(xs.map((x) => x[k]));
    console.log(
      `${`+${r.size} MiB`.padEnd(9)} | ${`${r.compressedMiB.toFixed(0)} MiB`.padEnd(18)} | ${fmt(m(r.restart, 'downMs')).padEnd(15)} | ${`${fmt(m(r.prepull, 'downMs'))} / ${fmt(m(r.prepull, 'afterSwapMs'))} / ${m(r.prepull, 'beforeSwap')} / ${fmt(m(r.prepull, 'took'))}`.padEnd(56)} | ${fmt(m(r.noprepull, 'downMs'))} / ${fmt(m(r.noprepull, 'took'))}`,
    );
  }
  const over = (key) =>
    Math.max(
      ...results.map(
        (r) => median(r.prepull.map((x) => x[key])) - median(r.restart.map((x) => x.downMs)),
      ),
    );
  const [worst, worstAfter] = [over('downMs'), over('afterSwapMs')];
  const vsFloor = (ms) => (ms < 0 ? `floor - ${fmt(-ms)}` : `floor + ${fmt(ms)}`);
  console.log(
    `goal: pre-pull downtime <= restart floor + 2 s at every size: ${worst <= 2000 ? 'met' : 'NOT met'} (worst: ${vsFloor(worst)}; counted from the swap: ${worstAfter <= 2000 ? 'met' : 'NOT met'}, ${vsFloor(worstAfter)})`,
  );
  if (results.some((r) => r.prepull.some((x) => !x.pulledBefore))) {
    console.log('note: in some pre-pull runs the installer named no pull of the new image');
  }
  if (results.some((r) => r.noprepull.some((x) => x.pulledBefore))) {
    console.log(`note: in some runs with ${SKIP_PREPULL}=1 the installer pulled before the swap`);
  }
} finally {
  await teardown();
}

function ok(s) {
  return s.s >= 200 && s.s < 300;
}

function parse(text) {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .sort((a, b) => a.t - b.t);
}

/** Runs of equal probe results, with their wall-clock times (for --journal). */
function probeSummary(samples, flipAt) {
  const out = [];
  const at = (t) => new Date(t).toISOString().slice(11, 23);
  for (let i = 0; i < samples.length; ) {
    let j = i;
    while (j + 1 < samples.length && samples[j + 1].s === samples[i].s) j++;
    out.push(`  ${at(samples[i].t)}..${at(samples[j].t)} status ${samples[i].s} x${j - i + 1}`);
    i = j + 1;
  }
  if (flipAt !== undefined) out.push(`  generation live (installer output) at ${at(flipAt)}`);
  return out.join('\n');
}

/** From the first probe without 2xx to the first 2xx after the last one. */
function window(samples) {
  const firstBad = samples.findIndex((s) => !ok(s));
  if (firstBad < 0) return { downMs: 0, failures: 0 };
  const lastBad = samples.findLastIndex((s) => !ok(s));
  const back = samples[lastBad + 1];
  return {
    downMs: (back ? back.t : samples[lastBad].t) - samples[firstBad].t,
    failures: samples.filter((s) => !ok(s)).length,
  };
}

/** The probe, run by the host's own node: one line per probe, its send time and status (0: no answer). */
function probeSource() {
  return `import { request } from 'node:http';
const [url, every] = process.argv.slice(2);
const timer = setInterval(() => {
  const t = Date.now();
  let done = false;
  const finish = (s) => { if (!done) { done = true; process.stdout.write(JSON.stringify({ t, s }) + '\\n'); } };
  const req = request(url, { timeout: 2000, agent: false }, (res) => { res.resume(); finish(res.statusCode); });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => finish(0));
  req.end();
}, Number(every));
process.stdin.resume();
process.stdin.on('end', () => { clearInterval(timer); setTimeout(() => process.exit(0), 2100); });
`;
}
