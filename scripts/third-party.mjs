#!/usr/bin/env node
// The release's third-party notices and SBOM, made from what the single-file
// installer really holds: the packages whose files esbuild put into it
// (dist/installer/rick-install.meta.json, written by installer/build.mjs)
// with their versions, licenses and hashes from package-lock.json, and each
// one's license text from its own package directory. Every bundle and every
// host carries that installer, so these are the packages a host runs.
//
//   node scripts/third-party.mjs --out DIR [--metafile FILE] [--version X.Y.Z]
//
// Writes DIR/THIRD-PARTY-NOTICES.txt and DIR/rick-install.cdx.json (CycloneDX
// 1.5, JSON). Deterministic: no time and no random serial number, so that a
// rebuild from the tag gives the same bytes. A package without a license in
// the lockfile or without a license file fails the script: a release never
// ships a notice with a hole in it.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function fail(message) {
  process.stderr.write(`third-party: ${message}\n`);
  process.exit(1);
}

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  if (value === undefined || value.startsWith('--')) fail(`${name} needs a value`);
  return value;
};
for (const a of args) {
  if (a.startsWith('--') && !['--out', '--metafile', '--version'].includes(a)) {
    fail(`unknown argument: ${a}`);
  }
}
const out = option('--out') ?? fail('--out DIR is required');
const metafile = resolve(
  option('--metafile') ?? join(repo, 'dist/installer/rick-install.meta.json'),
);
const readJson = async (path, what) => {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    return fail(`cannot read ${what} ${path}: ${error.message}`);
  }
};
const meta = await readJson(metafile, 'the installer metafile');
const lock = await readJson(join(repo, 'package-lock.json'), 'the lockfile');
const pkg = await readJson(join(repo, 'package.json'), 'package.json');
const version = option('--version') ?? process.env.RICK_VERSION ?? pkg.version;

/** node_modules/a/node_modules/@b/c/lib/x.js -> node_modules/a/node_modules/@b/c */
function packageDir(input) {
  const at = input.lastIndexOf('node_modules/');
  if (at < 0) return undefined;
  const rest = input.slice(at + 'node_modules/'.length).split('/');
  const name = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  return `${input.slice(0, at)}node_modules/${name}`;
}

const dirs = [
  ...new Set(
    Object.keys(meta.inputs ?? {})
      .map(packageDir)
      .filter(Boolean),
  ),
].sort();
if (dirs.length === 0) fail(`${metafile} names no package: not an installer metafile`);

const packages = [];
for (const dir of dirs) {
  const entry = lock.packages?.[dir];
  if (!entry) fail(`${dir} is in the installer but not in package-lock.json`);
  const own = await readJson(join(repo, dir, 'package.json'), 'the package.json of');
  const name = own.name;
  if (entry.version !== own.version) {
    fail(
      `${dir}: package-lock.json says ${entry.version}, node_modules holds ${own.version} (npm ci)`,
    );
  }
  const license = entry.license ?? own.license;
  if (typeof license !== 'string' || license === '')
    fail(`${name} ${own.version} names no license`);
  const files = (await readdir(join(repo, dir)))
    .filter((f) => /^(licen[cs]e|copying)/i.test(f))
    .sort();
  if (files.length === 0) fail(`${name} ${own.version} has no license file in ${dir}`);
  const texts = [];
  for (const f of files) texts.push((await readFile(join(repo, dir, f), 'utf8')).trimEnd());
  packages.push({ name, version: own.version, license, integrity: entry.integrity, texts });
}
packages.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

const rule = '-'.repeat(72);
const notices = [
  `rick-install ${version} (the single-file installer in every rick bundle) contains`,
  'the following packages, each under its own license, reproduced below.',
  '',
  ...packages.map((p) => `  ${p.name} ${p.version} (${p.license})`),
  '',
  ...packages.flatMap((p) => [
    rule,
    `${p.name} ${p.version} (${p.license})`,
    rule,
    '',
    ...p.texts.flatMap((t) => [t, '']),
  ]),
].join('\n');

/** npm's sha512-<base64> integrity as CycloneDX hashes. */
function hashes(integrity) {
  if (typeof integrity !== 'string') return [];
  return integrity
    .split(/\s+/)
    .filter((i) => i.startsWith('sha512-'))
    .map((i) => ({ alg: 'SHA-512', content: Buffer.from(i.slice(7), 'base64').toString('hex') }));
}
const purl = (name, v) => `pkg:npm/${name.startsWith('@') ? `%40${name.slice(1)}` : name}@${v}`;
const isSpdxId = (l) => /^[A-Za-z0-9.+-]+$/.test(l);
const sbom = {
  bomFormat: 'CycloneDX',
  specVersion: '1.5',
  version: 1,
  metadata: {
    component: {
      type: 'application',
      'bom-ref': purl('rick-install', version),
      name: 'rick-install',
      version,
      licenses: [{ license: { id: pkg.license } }],
    },
  },
  components: packages.map((p) => ({
    type: 'library',
    'bom-ref': purl(p.name, p.version),
    name: p.name,
    version: p.version,
    purl: purl(p.name, p.version),
    licenses: [isSpdxId(p.license) ? { license: { id: p.license } } : { expression: p.license }],
    hashes: hashes(p.integrity),
  })),
  dependencies: [
    { ref: purl('rick-install', version), dependsOn: packages.map((p) => purl(p.name, p.version)) },
  ],
};

await writeFile(join(out, 'THIRD-PARTY-NOTICES.txt'), `${notices}\n`);
await writeFile(join(out, 'rick-install.cdx.json'), `${JSON.stringify(sbom, null, 2)}\n`);
console.log(
  `third-party: ${packages.length} packages: ${packages.map((p) => `${p.name}@${p.version}`).join(' ')}`,
);
