// The floor under `npm run bench:install`: what the external steps of an
// install cost with no installer around them. Run by bench/install.mjs as
//
//   node bench/install-floor.cjs BUNDLE SIGNATURE KEYRING.gpg GENERATION ROOT
//
// It does, in rick-install's order and overlapping steps wherever they
// allow (a little more than rick-install does), only what the issue
// requires of every install and what no installer can skip:
// gpgv over a private copy of the bundle, the flock(1) lock, systemd-sysusers
// and systemd-tmpfiles with --root, the generation's files written and
// fsynced (copied from GENERATION, an earlier install's generation of the
// same bundle, so no archive is read and nothing is substituted), podman's
// quadlet dry-run over them, the symlink flip and state.json, each with the
// directory fsyncs. No parsing, no schema, no checks: a lower bound, not an
// installer. CommonJS and Node built-ins only, so that its own start is as
// close to a bare `node` as a script can be.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const { tmpdir } = require('node:os');
const { join, relative } = require('node:path');

const [bundle, signature, keyring, generation, root] = process.argv.slice(2);
const stateDir = join(root, 'var/lib/rick');

function run(command, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'ignore', 'inherit'],
      ...(env ? { env: { ...process.env, ...env } } : {}),
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} exited ${code}`)),
    );
  });
}

async function fsyncPath(path, flags = 'r') {
  const handle = await fsp.open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function listFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath ?? entry.path, entry.name));
  }
  return out;
}

async function writeGeneration(target) {
  const files = listFiles(generation).map((file) => ({
    rel: relative(generation, file),
    data: fs.readFileSync(file),
    mode: fs.statSync(file).mode & 0o7777,
  }));
  const dirs = new Set([target]);
  for (const f of files) {
    let d = join(target, f.rel, '..');
    while (d.length > target.length) {
      dirs.add(d);
      d = join(d, '..');
    }
  }
  for (const d of [...dirs].sort()) fs.mkdirSync(d, { recursive: true });
  await Promise.all(
    files.map(async (f) => {
      const handle = await fsp.open(join(target, f.rel), 'wx', f.mode);
      try {
        await handle.writeFile(f.data);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }),
  );
  await Promise.all([...dirs].map((d) => fsyncPath(d)));
}

async function main() {
  // 1. The signature, over a private copy of the bundle, and 2. the lock,
  // held by flock(1) until this process lets go of it. rick-install takes
  // the lock only once the signature is good; the floor lets the two
  // overlap, which only lowers it.
  const home = fs.mkdtempSync(join(tmpdir(), 'rick-floor-'));
  for (const [name, from] of [
    ['trusted.gpg', keyring],
    ['bundle.sig', signature],
    ['bundle.tgz', bundle],
  ]) {
    fs.writeFileSync(join(home, name), fs.readFileSync(from), { mode: 0o600 });
  }
  const verified = run('gpgv', [
    '--homedir',
    home,
    '--status-fd',
    '1',
    '--keyring',
    join(home, 'trusted.gpg'),
    join(home, 'bundle.sig'),
    join(home, 'bundle.tgz'),
  ]);
  fs.mkdirSync(stateDir, { recursive: true });
  const lock = spawn(
    'flock',
    ['--nonblock', '--exclusive', '--no-fork', join(stateDir, 'lock'), 'cat'],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const locked = new Promise((resolve) => {
    lock.stdout.once('data', resolve);
    lock.stdin.write('held\n');
  });
  await Promise.all([verified, locked]);
  fs.rmSync(home, { recursive: true, force: true });

  // 3. Users and groups, then 4. directories, the generation and its check.
  const fragments = join(generation, 'bundles');
  const [name] = fs.readdirSync(fragments);
  const bundleDir = join(fragments, name);
  const sysusers = join(bundleDir, 'sysusers.d');
  const tmpfiles = join(bundleDir, 'tmpfiles.d');
  if (fs.existsSync(sysusers)) {
    for (const f of fs.readdirSync(sysusers)) {
      await run('systemd-sysusers', [`--root=${root}`, join(sysusers, f)]);
    }
  }
  const target = join(stateDir, 'generations', '1.tmp');
  await Promise.all([
    ...(fs.existsSync(tmpfiles)
      ? fs
          .readdirSync(tmpfiles)
          .map((f) => run('systemd-tmpfiles', [`--root=${root}`, '--create', join(tmpfiles, f)]))
      : []),
    (async () => {
      await writeGeneration(target);
      if (process.env.RICK_QUADLET) {
        await run(process.env.RICK_QUADLET, ['-dryrun'], {
          QUADLET_UNIT_DIRS: join(target, 'quadlet'),
        });
      }
    })(),
  ]);
  fs.renameSync(target, join(stateDir, 'generations', '1'));
  await fsyncPath(join(stateDir, 'generations'));

  // 5. The flip and the state.
  fs.symlinkSync('generations/1', join(stateDir, 'current.tmp'));
  fs.renameSync(join(stateDir, 'current.tmp'), join(stateDir, 'current'));
  await fsyncPath(stateDir);
  const handle = await fsp.open(join(stateDir, '.state.json.tmp'), 'w', 0o644);
  await handle.writeFile(`${JSON.stringify({ schemaVersion: 1, live: 1 }, null, 2)}\n`);
  await handle.sync();
  await handle.close();
  fs.renameSync(join(stateDir, '.state.json.tmp'), join(stateDir, 'state.json'));
  await fsyncPath(stateDir);

  lock.stdin.end();
  await new Promise((resolve) => lock.on('close', resolve));
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`install floor: ${error.message}\n`);
    process.exit(1);
  },
);
