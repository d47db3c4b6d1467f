#!/usr/bin/env node
// npm run bench:intake
//
// The host installer's intake, in process (dist/ from `npm run build`):
// 1. A synthetic bundle of 1,000 container units, each with an env file and
//    placeholders: readVerifiedBundle (keyring, signature check, archive read
//    and validation), resolveFacts (--root accounts, secrets file) and
//    substituteBundle. Median wall time of several runs, and the peak RSS.
// 2. A gzip bomb (64 MiB of zeros behind a ~64 KiB archive): time to refuse
//    and the RSS it costs, to show the cap cuts inflation off early.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.env.BENCH_RUNS ?? 7);
const units = Number(process.env.BENCH_UNITS ?? 1000);
const dist = (p) => import(join(repo, 'dist', p));

const { generateSigningKey, readSigningKey, signDetached } = await dist('io/openpgp.js');
const { packTarGz, packTar } = await dist('io/tar-pack.js');
const { readVerifiedBundle } = await dist('io/bundle-trust.js');
const { resolveFacts } = await dist('io/facts.js');
const { fileAccounts } = await dist('io/accounts.js');
const { readSecretsFile } = await dist('io/secrets.js');
const { substituteBundle } = await dist('core/substitute-bundle.js');
const { createHash } = await import('node:crypto');

const work = mkdtempSync(join(tmpdir(), 'rick-bench-intake-'));
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1);

try {
  const key = await generateSigningKey({
    name: 'rick bench',
    date: new Date('2024-01-01T00:00:00Z'),
  });
  const privateKey = await readSigningKey(key.privateKeyArmored, undefined);
  mkdirSync(join(work, 'keys'));
  writeFileSync(join(work, 'keys/release.asc'), key.publicKeyArmored, { mode: 0o644 });
  mkdirSync(join(work, 'root/etc'), { recursive: true });
  writeFileSync(join(work, 'root/etc/group'), 'postgres-clients:x:4001:\nsynth:x:995:\n');
  writeFileSync(join(work, 'root/etc/passwd'), 'synth:x:995:995::/:/usr/sbin/nologin\n');
  const secretsPath = join(work, 'synth.env');
  writeFileSync(secretsPath, 'token=bench/token\n', { mode: 0o600 });
  chmodSync(secretsPath, 0o600);

  // --- 1. a 1,000-unit bundle ------------------------------------------------
  const entries = [];
  for (let i = 0; i < units; i++) {
    entries.push({
      path: `quadlet/synth-${i}.container`,
      mode: 0o644,
      data: Buffer.from(
        `[Container]\nImage=registry.example.org/synth:${i}\nEnvironmentFile=@@rick:path:env/synth-${i}.env@@\nUser=@@rick:uid:synth@@:@@rick:gid:synth@@\nPodmanArgs=--group-add @@rick:gid:postgres-clients@@\n\n[Install]\nWantedBy=multi-user.target\n`,
      ),
    });
    entries.push({
      path: `env/synth-${i}.env`,
      mode: 0o600,
      data: Buffer.from(
        `INDEX=${i}\nTOKEN=@@rick:secret:token@@\nURL=http://x/?t=@@rick:secret:token:url@@\n`,
      ),
    });
  }
  const manifest = {
    schemaVersion: 1,
    name: 'synth',
    version: '1.0.0',
    createdAt: '2024-01-01T00:00:00.000Z',
    source: { commit: null },
    requires: { podman: '5.3.0' },
    files: entries.map((e) => ({
      path: e.path,
      kind: e.path.startsWith('env/') ? 'env' : 'quadlet',
      sha256: sha256(e.data),
      size: e.data.length,
      mode: e.mode,
    })),
    facts: [
      { kind: 'gid', name: 'postgres-clients' },
      { kind: 'gid', name: 'synth' },
      { kind: 'secret', name: 'token' },
      { kind: 'uid', name: 'synth' },
    ],
    services: [],
  };
  const tgz = packTarGz(
    [
      ...entries,
      { path: 'manifest.json', mode: 0o644, data: Buffer.from(JSON.stringify(manifest)) },
    ],
    { mtime: 1_700_000_000 },
  );
  const bundlePath = join(work, 'synth-1.0.0.tgz');
  writeFileSync(bundlePath, tgz);
  writeFileSync(`${bundlePath}.sig`, await signDetached(tgz, privateKey));

  const timings = { verifyAndParse: [], facts: [], substitute: [], total: [] };
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const verified = await readVerifiedBundle({ bundlePath, keyringPath: join(work, 'keys') });
    const t1 = performance.now();
    const secrets = await readSecretsFile(secretsPath);
    const facts = await resolveFacts(
      verified.contents.manifest,
      fileAccounts(join(work, 'root')),
      secrets,
      {
        secretsPath,
      },
    );
    const t2 = performance.now();
    const out = substituteBundle(verified.contents, facts, 1);
    const t3 = performance.now();
    if (out.size !== units * 2) throw new Error('substitution lost files');
    timings.verifyAndParse.push(t1 - t0);
    timings.facts.push(t2 - t1);
    timings.substitute.push(t3 - t2);
    timings.total.push(t3 - t0);
    peak = Math.max(peak, process.memoryUsage().rss);
  }
  console.log(
    `intake of a ${units}-unit bundle (${units * 2} files, ${mib(tgz.length)} MiB compressed), median of ${runs} runs:`,
  );
  for (const [name, xs] of Object.entries(timings))
    console.log(`  ${name.padEnd(15)} ${median(xs).toFixed(1)} ms`);
  console.log(`  peak RSS        ${mib(peak)} MiB (${mib(baseline)} MiB before the first run)`);

  // --- 2. a gzip bomb ----------------------------------------------------------
  const bomb = gzipSync(
    packTar(
      [{ path: 'quadlet/zeros.container', mode: 0o644, data: Buffer.alloc(64 * 1024 * 1024) }],
      {
        mtime: 0,
      },
    ),
    { level: 9 },
  );
  const bombPath = join(work, 'bomb-1.0.0.tgz');
  writeFileSync(bombPath, bomb);
  writeFileSync(`${bombPath}.sig`, await signDetached(bomb, privateKey));
  global.gc?.();
  const before = process.memoryUsage().rss;
  const bombTimes = [];
  let message = '';
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    try {
      await readVerifiedBundle({ bundlePath: bombPath, keyringPath: join(work, 'keys') });
      throw new Error('the bomb was accepted');
    } catch (error) {
      if (error.code !== 'BUNDLE_INVALID') throw error;
      message = error.message;
    }
    bombTimes.push(performance.now() - t0);
  }
  const after = process.memoryUsage().rss;
  console.log(`gzip bomb (${mib(bomb.length)} MiB expanding to 64 MiB), median of ${runs} runs:`);
  console.log(`  refused in      ${median(bombTimes).toFixed(1)} ms: ${message}`);
  console.log(`  RSS growth      ${mib(Math.max(0, after - before))} MiB`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
