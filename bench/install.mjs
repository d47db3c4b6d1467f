#!/usr/bin/env node
// npm run bench:install
//
// 1. The authentik bundle (bundles/authentik, built and signed here) installed
//    with --root into a fresh tree, as a whole process, against a bare
//    `node -e ''` start: median of several runs each, and the ratio of the
//    medians (target <= 2.5x). Measured for the single-file installer every
//    bundle ships (dist/installer/rick-install.cjs, what /usr/local/bin/rick-install
//    runs on a host) and for the tsc output (dist/cli/rick-install.js). The
//    single file is measured twice: on a tree without its V8 code cache (a
//    host's first install) and with it (every later install); see
//    installer/entry.ts. Wall times are medians of alternating runs; CPU time
//    (user + system, children included) is steadier on a loaded machine.
// 2. A synthetic bundle of 1,000 container units (each with its env file):
//    wall time and peak RSS of the install (targets < 2 s, < 200 MiB).
//
// Both runs include everything an offline install does: signature check,
// archive read, systemd-sysusers/systemd-tmpfiles --root, the generation
// write with fsyncs, and podman's quadlet dry-run when it is available
// (RICK_QUADLET, .cache/podman from scripts/fetch-quadlet.sh).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeDropped, hostEnv } from './host-env.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.env.BENCH_RUNS ?? 9);
const work = mkdtempSync(join(tmpdir(), 'rick-bench-'));
const quadlet = join(repo, '.cache/podman/root/usr/libexec/podman/quadlet');
const measured = hostEnv();
const env = {
  ...measured.env,
  ...(existsSync(quadlet) && !process.env.RICK_QUADLET ? { RICK_QUADLET: quadlet } : {}),
};

const { generateSigningKey, readSigningKey, signDetached } = await import(
  join(repo, 'dist/bundle/openpgp.js')
);
const { packTarGz } = await import(join(repo, 'dist/build/tar-pack.js'));
const { dearmor } = await import(join(repo, 'dist/bundle/armor.js'));

/** CPU ms (user + system) of this process's reaped children, from /proc (Linux). */
function childrenCpu() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // cutime and cstime are fields 16 and 17 of stat(5), in clock ticks (100 per second).
    return (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    return Number.NaN;
  }
}

function run(cmd, args, options = {}) {
  const started = process.hrtime.bigint();
  const cpuBefore = childrenCpu();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', ...options });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const cpu = childrenCpu() - cpuBefore;
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`,
    );
  }
  return { ms, cpu, stdout: r.stdout, stderr: r.stderr };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// --- keys and host template -------------------------------------------------
const key = await generateSigningKey({
  name: 'rick bench',
  date: new Date('2024-01-01T00:00:00Z'),
});
const privateKey = await readSigningKey(key.privateKeyArmored, undefined);
const template = join(work, 'template');
mkdirSync(join(template, 'etc/rick/keys'), { recursive: true });
mkdirSync(join(template, 'etc/rick/secrets'), { recursive: true, mode: 0o700 });
writeFileSync(join(template, 'etc/rick/keys/release.asc'), key.publicKeyArmored);
writeFileSync(
  join(template, 'etc/group'),
  'root:x:0:\npostgres-clients:x:4001:\nvalkey-clients:x:4002:\n',
);
writeFileSync(join(template, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
for (const [name, text] of [
  [
    'authentik',
    'authentik_db_password=bench-db\nauthentik_secret_key=bench-key\nauthentik_valkey_password=bench/valkey\n',
  ],
  ['synth', 'token=bench-token\n'],
]) {
  const file = join(template, `etc/rick/secrets/${name}.env`);
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}
// What each host grants the bundles (docs/policy.md): Authentik its repository
// grant, the synthetic bundle its user and the client group.
mkdirSync(join(template, 'etc/rick/policy.d'), { recursive: true });
cpSync(
  join(repo, 'bundles/authentik/policy.conf'),
  join(template, 'etc/rick/policy.d/authentik.conf'),
);
writeFileSync(
  join(template, 'etc/rick/policy.d/synth.conf'),
  'GROUPS=synth postgres-clients\nUSERS=synth\n',
);
// gpgv reads binary keyrings; the installer converts the armored key the same way.
const floorScript = join(repo, 'bench/install-floor.cjs');
const floorKeyring = join(work, 'floor-keyring.gpg');
writeFileSync(floorKeyring, Buffer.concat(dearmor(key.publicKeyArmored).map((b) => b.data)));
let trees = 0;
function freshRoot(from = template) {
  const root = join(work, `root-${trees++}`);
  cpSync(from, root, { recursive: true });
  return root;
}

// --- the authentik bundle ---------------------------------------------------
let authentik;
const shape = 'bundles/authentik built by rick-bundle';
if (existsSync(join(repo, 'bundles/authentik/bundle.yaml'))) {
  run(process.execPath, [
    join(repo, 'dist/cli/rick-bundle.js'),
    'build',
    join(repo, 'bundles/authentik'),
    '--version',
    '1.0.0',
    '--out',
    work,
  ]);
  authentik = join(work, 'authentik-1.0.0.tgz');
  writeFileSync(`${authentik}.sig`, await signDetached(readFileSync(authentik), privateKey));
} else {
  throw new Error('bundles/authentik is missing');
}

// The single-file installer, built fresh from the current sources.
const singleFile = join(work, 'rick-install.cjs');
const built = spawnSync(
  process.execPath,
  [join(repo, 'installer/build.mjs'), '--outfile', singleFile],
  {
    env,
    encoding: 'utf8',
  },
);
if (built.status !== 0) {
  console.log(
    `note: the single-file installer does not build now, measured the tsc output only:\n${built.stderr
      .split('\n')
      .filter((l) => l.includes('ERROR'))
      .join('\n')}`,
  );
}
const installers = [
  ['single-file installer (installer/build.mjs, what hosts run)', singleFile],
  ['tsc output (dist/cli/rick-install.js)', join(repo, 'dist/cli/rick-install.js')],
].filter(([, path]) => existsSync(path));

// --- synthetic 1,000-unit bundle ---------------------------------------------
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
// The bundle creates the account its units run as: a bundle names only the
// accounts it creates and the infrastructure groups (docs/policy.md).
const files = [
  {
    path: 'sysusers.d/synth.conf',
    data: Buffer.from('u synth - "synthetic bundle" / /usr/sbin/nologin\n'),
    mode: 0o644,
    kind: 'sysusers',
  },
];
for (let i = 0; i < 1000; i++) {
  const n = String(i).padStart(4, '0');
  files.push({
    path: `quadlet/synth-${n}.container`,
    data: Buffer.from(
      `[Unit]\nDescription=synthetic ${n}\n\n[Container]\nImage=registry.example.org/synth:${n}\nEnvironmentFile=@@rick:path:env/synth-${n}.env@@\nUser=@@rick:uid:synth@@:@@rick:gid:synth@@\nPodmanArgs=--group-add @@rick:gid:postgres-clients@@\n\n[Install]\nWantedBy=multi-user.target\n`,
    ),
    mode: 0o644,
    kind: 'quadlet',
  });
  files.push({
    path: `env/synth-${n}.env`,
    data: Buffer.from(`INDEX=${n}\nTOKEN=@@rick:secret:token@@\n`),
    mode: 0o600,
    kind: 'env',
  });
}
const manifest = {
  schemaVersion: 1,
  name: 'synth',
  version: '1.0.0',
  createdAt: '2024-01-01T00:00:00.000Z',
  source: { commit: null },
  requires: { podman: '5.3.0' },
  files: files.map((f) => ({
    path: f.path,
    kind: f.kind,
    sha256: sha256(f.data),
    size: f.data.length,
    mode: f.mode,
  })),
  facts: [
    { kind: 'gid', name: 'postgres-clients' },
    { kind: 'gid', name: 'synth' },
    { kind: 'secret', name: 'token' },
    { kind: 'uid', name: 'synth' },
  ],
  services: files
    .filter((f) => f.kind === 'quadlet')
    .map((f) => {
      const unit = f.path.slice('quadlet/'.length);
      return {
        unit,
        service: unit.replace(/\.container$/, '.service'),
        activeTimeoutSec: 120,
        checks: [],
      };
    }),
};
const synth = join(work, 'synth-1.0.0.tgz');
const tgz = packTarGz(
  [
    ...files.map((f) => ({ path: f.path, data: f.data, mode: f.mode })),
    {
      path: 'manifest.json',
      data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`),
      mode: 0o644,
    },
  ],
  { mtime: 1_700_000_000 },
);
writeFileSync(synth, tgz);
writeFileSync(`${synth}.sig`, await signDetached(tgz, privateKey));

const rssProbe = join(work, 'rss-probe.mjs');
writeFileSync(
  rssProbe,
  "import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(process.env.RICK_BENCH_RSS, String(process.resourceUsage().maxRSS)));\n",
);
console.log(
  `synthetic bundle: 1,000 container units + 1,000 env files (${(tgz.length / 1024).toFixed(0)} KiB tgz)`,
);
// This series runs first, and its trees are removed only at the very end:
// ext4 without a journal (as on the machine this was measured on) skips
// inodes freed in the last minute when it allocates new ones, so deleting
// thousands of files just before an install (which no host does) made the
// install's file creation several times slower, measuring the benchmark
// rather than rick-install.
const synthRoots = [];
for (const [label, cli] of installers) {
  const times = [];
  const rss = [];
  for (let i = 0; i < 3; i++) {
    const root = freshRoot();
    synthRoots.push(root);
    const rssFile = join(work, `rss-${i}`);
    times.push(
      run(process.execPath, ['--import', rssProbe, cli, synth, '--root', root], {
        env: { ...env, RICK_BENCH_RSS: rssFile },
      }).ms,
    );
    rss.push(Number(readFileSync(rssFile, 'utf8')) / 1024);
  }
  console.log(
    `  ${label}: median ${median(times).toFixed(0)} ms (target < 2000 ms), peak RSS ${Math.max(...rss).toFixed(0)} MiB (target < 200 MiB)`,
  );
}
console.log(`authentik install with --root vs bare node start (${runs} runs each; ${shape})`);
console.log(describeDropped(measured.dropped));
console.log(`quadlet dry-run: ${env.RICK_QUADLET ?? 'not available (skipped by the installer)'}`);
console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} on ${cpus().length} CPUs`,
);
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
for (const [label, cli] of installers) {
  // The single-file installer keeps a V8 code cache of its program in the
  // tree's state directory after a successful command (installer/entry.ts):
  // a host's first install runs without it, every later one with it. The
  // later case is measured on a fresh tree given the cache an earlier
  // install of the same bundle left, so that both do the same install work.
  const first = freshRoot();
  run(process.execPath, [cli, authentik, '--root', first]);
  // The generation this install wrote, for the floor series below.
  const floorGeneration = join(work, 'floor-generation');
  if (!existsSync(floorGeneration)) {
    cpSync(join(first, 'var/lib/rick/generations/1'), floorGeneration, { recursive: true });
  }
  const cacheDir = join(first, 'var/lib/rick/cache');
  let warmTemplate;
  if (existsSync(cacheDir)) {
    warmTemplate = join(work, 'template-with-cache');
    rmSync(warmTemplate, { recursive: true, force: true });
    cpSync(template, warmTemplate, { recursive: true });
    cpSync(cacheDir, join(warmTemplate, 'var/lib/rick/cache'), { recursive: true });
  }
  rmSync(first, { recursive: true, force: true });

  const series = { bare: [], help: [], cold: [], warm: [], floor: [] };
  const cpu = { bare: [], help: [], cold: [], warm: [], floor: [] };
  const measure = (name, args) => {
    const r = run(process.execPath, args);
    series[name].push(r.ms);
    cpu[name].push(r.cpu);
  };
  // Alternating runs, so that every series sees the same machine load.
  for (let i = 0; i < runs; i++) {
    measure('bare', ['-e', '']);
    measure('help', [cli, '--help']);
    let root = freshRoot();
    measure('cold', [cli, authentik, '--root', root]);
    rmSync(root, { recursive: true, force: true });
    if (warmTemplate) {
      root = freshRoot(warmTemplate);
      measure('warm', [cli, authentik, '--root', root]);
      rmSync(root, { recursive: true, force: true });
    }
    root = freshRoot();
    measure('floor', [
      floorScript,
      authentik,
      `${authentik}.sig`,
      floorKeyring,
      floorGeneration,
      root,
    ]);
    rmSync(root, { recursive: true, force: true });
  }
  const bareMs = median(series.bare);
  const bareCpu = sum(cpu.bare);
  const line = (name, what) =>
    `    ${what}: median ${median(series[name]).toFixed(0)} ms, ratio ${(median(series[name]) / bareMs).toFixed(2)}x (target <= 2.5x); CPU user+sys ${(sum(cpu[name]) / runs).toFixed(0)} ms per run, ratio ${(sum(cpu[name]) / bareCpu).toFixed(2)}x`;
  console.log(`  ${label}:`);
  console.log(
    `    bare node: median ${bareMs.toFixed(0)} ms, CPU user+sys ${(bareCpu / runs).toFixed(0)} ms per run`,
  );
  console.log(
    line('cold', warmTemplate ? 'install, no code cache yet (a first install)' : 'install'),
  );
  if (warmTemplate) console.log(line('warm', 'install with the code cache (every later install)'));
  console.log(
    `    loading the program alone (--help): median ${median(series.help).toFixed(0)} ms`,
  );
  console.log(line('floor', 'floor: the required external steps alone (bench/install-floor.cjs)'));
}
console.log(
  `load average at end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);

if (process.env.BENCH_PROFILE) {
  // BENCH_PROFILE=DIR: one CPU profile of the 1,000-unit install, for looking at, not for figures.
  const root = freshRoot();
  run(process.execPath, [
    '--cpu-prof',
    `--cpu-prof-dir=${resolve(process.env.BENCH_PROFILE)}`,
    join(repo, 'dist/cli/rick-install.js'),
    synth,
    '--root',
    root,
  ]);
}
for (const root of synthRoots) rmSync(root, { recursive: true, force: true });
if (process.env.BENCH_KEEP) console.log(`kept ${work}`);
else rmSync(work, { recursive: true, force: true });
