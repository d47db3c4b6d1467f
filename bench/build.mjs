// npm run bench:build — wall time and peak memory of `rick-bundle build`, as a
// whole process (the built CLI in dist/), for the authentik bundle and for a
// synthetic 500-unit bundle, with and without podman's quadlet check.
// Prints the median of several runs and the highest peak RSS seen.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist/cli/rick-bundle.js');
const runs = Number(process.env.BENCH_RUNS ?? 5);
const work = mkdtempSync(join(tmpdir(), 'rick-bench-build-'));
const hasTime = existsSync('/usr/bin/time');

let installer = join(root, 'dist/installer/rick-install.cjs');
if (!existsSync(installer)) {
  installer = join(work, 'rick-install.cjs');
  writeFileSync(installer, 'console.log("stand-in")\n');
  console.log('(dist/installer/rick-install.cjs missing: packing a small stand-in)');
}

function syntheticBundle(units) {
  const dir = join(work, `synthetic-${units}`);
  mkdirSync(join(dir, 'quadlet'), { recursive: true });
  mkdirSync(join(dir, 'env'), { recursive: true });
  const names = Array.from({ length: units }, (_, i) => `svc-${String(i).padStart(3, '0')}`);
  writeFileSync(
    join(dir, 'bundle.yaml'),
    [
      'name: synthetic',
      'variables:',
      '  image: docker.io/library/busybox',
      '  tag: "1.36"',
      '  data_root: /srv/synthetic',
      'files:',
      '  quadlet:',
      ...names.map((n) => `    - quadlet/${n}.container.j2`),
      '  env: [env/synthetic.env.j2]',
      'services:',
      ...names.map((n) => `  - unit: ${n}.container`),
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'env/synthetic.env.j2'),
    'PASSWORD={{ secret("synthetic_password") }}\nURL=unix:///run/x.sock?password={{ secret("synthetic_password") | urlencode }}\n',
  );
  for (const [i, n] of names.entries()) {
    writeFileSync(
      join(dir, `quadlet/${n}.container.j2`),
      [
        '{% import "quadlet.j2" as quadlet %}',
        '[Unit]',
        `Description=synthetic service ${i}`,
        '',
        '[Container]',
        `ContainerName=${n}`,
        'Image={{ image }}:{{ tag }}',
        'Exec=sleep infinity',
        'EnvironmentFile={{ bundle_path("env/synthetic.env") }}',
        'User={{ uid("synthetic") }}:{{ gid("synthetic") }}',
        'PodmanArgs={{ quadlet.group_add(["postgres-clients", "valkey-clients"]) }}',
        `{{ quadlet.volume(data_root ~ "/${n}", "/data", "Z") }}`,
        '',
        '{{ quadlet.service_sections(120) }}',
        '',
      ].join('\n'),
    );
  }
  return dir;
}

function once(bundleDir, extra) {
  const out = join(work, 'out');
  rmSync(out, { recursive: true, force: true });
  const args = [
    cli,
    'build',
    bundleDir,
    '--version',
    '1.0.0',
    '--out',
    out,
    '--installer',
    installer,
    '--templates',
    join(root, 'templates'),
    ...extra,
  ];
  const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
  const start = process.hrtime.bigint();
  const r = hasTime
    ? spawnSync('/usr/bin/time', ['-f', 'maxrss_kib=%M cpu_s=%U+%S', process.execPath, ...args], {
        env,
      })
    : spawnSync(process.execPath, args, { env });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) {
    throw new Error(`build failed (${r.status}): ${r.stderr.toString()}`);
  }
  const rss = /maxrss_kib=(\d+) cpu_s=([\d.]+)\+([\d.]+)/.exec(r.stderr.toString());
  return {
    ms,
    rssMiB: rss ? Number(rss[1]) / 1024 : Number.NaN,
    // CPU time of the process (user + system): steadier than wall time on a busy machine.
    cpuMs: rss ? (Number(rss[2]) + Number(rss[3])) * 1000 : Number.NaN,
  };
}

function measure(label, bundleDir, extra = []) {
  once(bundleDir, extra); // warm the file cache
  const results = Array.from({ length: runs }, () => once(bundleDir, extra));
  const times = results.map((r) => r.ms).sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  const peak = Math.max(...results.map((r) => r.rssMiB));
  const cpu = results.map((r) => r.cpuMs).sort((a, b) => a - b);
  console.log(
    `${label.padEnd(44)} median ${median.toFixed(0).padStart(6)} ms   min ${times[0].toFixed(0).padStart(6)} ms   cpu ${cpu[Math.floor(cpu.length / 2)].toFixed(0).padStart(6)} ms   peak RSS ${peak.toFixed(1).padStart(6)} MiB`,
  );
}

const bare = Array.from({ length: runs }, () => {
  const start = process.hrtime.bigint();
  spawnSync(process.execPath, ['-e', '']);
  return Number(process.hrtime.bigint() - start) / 1e6;
}).sort((a, b) => a - b);

try {
  console.log(
    `rick-bundle build, ${runs} runs each (node ${process.version}, ${hasTime ? '/usr/bin/time for RSS' : 'no /usr/bin/time: RSS not measured'})`,
  );
  console.log(
    `${'bare `node -e ""` start'.padEnd(44)} median ${bare[Math.floor(bare.length / 2)].toFixed(0).padStart(6)} ms`,
  );
  const authentik = join(root, 'bundles/authentik');
  measure('authentik, quadlet check', authentik);
  measure('authentik, --no-quadlet-check', authentik, ['--no-quadlet-check']);
  const synthetic = syntheticBundle(500);
  measure('synthetic 500 units, quadlet check', synthetic);
  measure('synthetic 500 units, --no-quadlet-check', synthetic, ['--no-quadlet-check']);
} finally {
  rmSync(work, { recursive: true, force: true });
}
