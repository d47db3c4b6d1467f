#!/usr/bin/env node
// Plans the next release index from the state of the repository, never from
// the event that started the run: the GitHub releases (every bundle of every
// release is listed), and release-index.yaml on the branch (the yanks and the
// rollouts, changed by a reviewed commit). scripts/index-publish.sh runs the
// steps in order, each `rick-bundle index` starting from the one before, the
// last one re-signing, so one run applies every change made before it
// started. That is why a run GitHub cancels while pending (one pending run
// per concurrency group) loses nothing: the run that replaced it started
// later and reads a state that holds every change the cancelled one saw.
//
//   node scripts/index-plan.mjs --releases FILE --state FILE --downloads DIR --out DIR
//       [--previous index.json] [--waves 0h:5,24h:50]
//
// --releases: one JSON object a line, {tag, prerelease, draft, assets: [names]}
// (gh api --paginate repos/OWNER/NAME/releases --jq '.[] | {...}').
// Writes into --out: `target` (the tag of the newest stable release, where the
// index goes and which becomes the latest), and for each step NNN.args
// (`rick-bundle index` arguments, one a line) and, when the step adds a
// release's bundles, NNN.download (the tag, then each asset to download into
// DIR/<tag>/).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { parse as parseYaml } from 'yaml';

const DAY_MS = 86_400_000;

/** `0h:5,24h:50` with a start time → the wave times an index records. */
export function waveTimes(from, waves) {
  const start = Date.parse(from);
  if (Number.isNaN(start)) throw new Error(`rollout start ${JSON.stringify(from)} is not a time`);
  return waves.split(',').map((part) => {
    const m = /^([0-9]+)([mhd]):([0-9]+)$/.exec(part.trim());
    if (!m) throw new Error(`wave ${JSON.stringify(part)} is not DELAY:PERCENT`);
    const unit = { m: 60_000, h: 3_600_000, d: DAY_MS }[m[2]];
    return { at: new Date(start + Number(m[1]) * unit).toISOString(), percent: Number(m[3]) };
  });
}

/** release-index.yaml: `yanked: [{release, reason}]`, `rollouts: [{release, from, waves}]`. */
export function parseState(text) {
  const doc = parseYaml(text) ?? {};
  const problems = [];
  const list = (key) => {
    const v = doc[key] ?? [];
    if (!Array.isArray(v)) problems.push(`${key} must be a list`);
    return Array.isArray(v) ? v : [];
  };
  for (const key of Object.keys(doc)) {
    if (!['yanked', 'rollouts'].includes(key)) problems.push(`unknown key ${key}`);
  }
  const target = /^(?:[a-z0-9][a-z0-9-]*@)?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;
  const yanked = list('yanked').map((y, i) => {
    if (typeof y?.release !== 'string' || !target.test(y.release)) {
      problems.push(`yanked.${i}.release must be VERSION or NAME@VERSION`);
    }
    if (typeof y?.reason !== 'string' || y.reason.trim() === '' || y.reason.includes('\n')) {
      problems.push(`yanked.${i}.reason must be one line saying what is wrong`);
    }
    return { release: y?.release, reason: y?.reason };
  });
  const rollouts = list('rollouts').map((r, i) => {
    if (typeof r?.release !== 'string' || !target.test(r.release)) {
      problems.push(`rollouts.${i}.release must be VERSION or NAME@VERSION`);
    }
    const from = r?.from instanceof Date ? r.from.toISOString() : r?.from;
    try {
      waveTimes(String(from), String(r?.waves));
    } catch (error) {
      problems.push(`rollouts.${i}: ${error.message}`);
    }
    return { release: r?.release, from: String(from), waves: String(r?.waves) };
  });
  if (problems.length > 0) throw new Error(`release-index.yaml: ${problems.join('; ')}`);
  return { yanked, rollouts };
}

const matches = (target, entry) => {
  const [name, version] = target.includes('@') ? target.split('@') : [undefined, target];
  return entry.version === version && (name === undefined || entry.bundle === name);
};

/**
 * The steps, in order: each release's bundles the index does not list yet
 * (oldest release first), the yanks and rollouts release-index.yaml says and
 * the index does not, the yanks it no longer says lifted, and a last step
 * with no change that signs the result with the current time.
 */
export function planSteps({ previous, releases, state, downloads, waves }) {
  const listed = (previous?.releases ?? []).map((r) => ({
    bundle: r.bundle,
    version: r.version,
    rollout: r.rollout,
  }));
  const yanked = previous?.yanked ?? [];
  const steps = [];
  const published = releases
    .filter((r) => !r.draft && semver.valid(r.tag))
    .sort((a, b) => semver.compare(a.tag, b.tag));
  for (const r of published) {
    const version = semver.clean(r.tag);
    const bundles = r.assets
      .filter((a) => a.endsWith(`-${version}.tgz`))
      .map((a) => ({ asset: a, bundle: a.slice(0, -`-${version}.tgz`.length) }))
      .filter((b) => !listed.some((l) => l.bundle === b.bundle && l.version === version));
    if (bundles.length === 0) continue;
    const args = bundles.flatMap((b) => ['--add', join(downloads, r.tag, b.asset)]);
    args.push('--location', `../../download/${r.tag}/`);
    if (r.prerelease) args.push('--channel', 'prerelease');
    if (waves) args.push('--waves', waves);
    // rick-bundle index reads each bundle back with its signature beside it.
    const download = bundles.flatMap((b) => [b.asset, `${b.asset}.sig`]);
    steps.push({ download: [r.tag, ...download], args });
    for (const b of bundles) listed.push({ bundle: b.bundle, version });
  }
  for (const y of state.yanked) {
    // A version the index never listed may be yanked by its full name.
    const hits = listed.filter((l) => matches(y.release, l));
    const [bundle, version] = y.release.split('@');
    const targets = hits.length > 0 ? hits : version ? [{ bundle, version }] : [];
    const done =
      targets.length > 0 &&
      targets.every((t) =>
        yanked.some(
          (x) => x.bundle === t.bundle && x.version === t.version && x.reason === y.reason,
        ),
      );
    if (!done) steps.push({ args: ['--yank', y.release, '--reason', y.reason] });
  }
  for (const x of yanked) {
    if (!state.yanked.some((y) => matches(y.release, x))) {
      steps.push({ args: ['--unyank', `${x.bundle}@${x.version}`] });
    }
  }
  for (const r of state.rollouts) {
    // Compared as instants: the index writes times without milliseconds.
    const instants = (waves) =>
      JSON.stringify((waves ?? []).map((w) => [Date.parse(w.at), w.percent]));
    const want = instants(waveTimes(r.from, r.waves));
    const hits = listed.filter((l) => matches(r.release, l));
    if (hits.length > 0 && hits.every((h) => instants(h.rollout) === want)) continue;
    // Wave times count from the rollout's own start, not from this run: a
    // rollout written once is the same rollout whenever it is applied. The
    // step is issued at that start; the last step re-signs it now.
    steps.push({
      args: [
        '--rollout',
        r.release,
        '--waves',
        r.waves,
        '--issued',
        r.from,
        '--valid-for',
        '3650d',
      ],
    });
  }
  steps.push({ args: [] });
  return steps;
}

/** The newest stable release by version: where the index goes. */
export function targetRelease(releases) {
  const stable = releases
    .filter((r) => !r.draft && !r.prerelease && semver.valid(r.tag))
    .sort((a, b) => semver.compare(b.tag, a.tag));
  return stable[0]?.tag ?? '';
}

async function main(argv) {
  const option = (name) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const need = (name) => {
    const v = option(name);
    if (!v) throw new Error(`${name} is required`);
    return v;
  };
  const releases = (await readFile(need('--releases'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
  const statePath = need('--state');
  const state = parseState(await readFile(statePath, 'utf8'));
  const previousPath = option('--previous');
  const previous = previousPath ? JSON.parse(await readFile(previousPath, 'utf8')) : undefined;
  const steps = planSteps({
    previous,
    releases,
    state,
    downloads: need('--downloads'),
    waves: option('--waves') || undefined,
  });
  const out = need('--out');
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'target'), `${targetRelease(releases)}\n`);
  for (const [i, step] of steps.entries()) {
    const n = String(i + 1).padStart(3, '0');
    for (const a of step.args) {
      if (a.includes('\n')) throw new Error(`argument ${JSON.stringify(a)} holds a line break`);
    }
    await writeFile(join(out, `${n}.args`), step.args.map((a) => `${a}\n`).join(''));
    if (step.download) await writeFile(join(out, `${n}.download`), `${step.download.join('\n')}\n`);
    console.log(`step ${n}: ${step.args.length ? step.args.join(' ') : 're-sign'}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error) => {
    process.stderr.write(`index-plan: ${error.message}\n`);
    process.exit(1);
  });
}
