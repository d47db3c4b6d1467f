/**
 * `rick-bundle index`: writes the signed release index, `index.json`, and its
 * binary detached signature `index.json.sig` (the same OpenPGP signing as
 * bundles; src/bundle/release-index.ts has the format).
 *
 * Each run starts from the index published before (`--previous`, whose
 * signature is checked first) and applies the changes asked for: releases
 * added (`--add bundle.tgz`, read back as a host would: signature, archive,
 * manifest), a rollout plan set (`--waves`, for the added releases or those
 * named by `--rollout`), versions yanked or unyanked. Every run signs a new
 * index: a higher serial, issued now, expiring `--valid-for` later. Run with
 * nothing to change, it re-signs the same contents, which is how the index
 * stays fresh.
 *
 * What would publish a broken fleet state is refused before anything is
 * read or written: no `--previous` without `--new` (an index started afresh
 * drops every release and yank the published one lists), an index that has
 * expired or expires within the hour (hosts refuse it, or soon will), and a
 * flag that would change nothing (`--waves` with nothing to roll out,
 * `--reason` without `--yank`, …), which is a mistake about what was asked.
 *
 * `planIndex` is the pure part: previous index and changes in, new index out.
 */
import { mkdir } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import semver from 'semver';
import {
  INDEX_FILE,
  INDEX_SCHEMA_VERSION,
  INDEX_SIGNATURE_FILE,
  type IndexRelease,
  indexChannels,
  locationPattern,
  parseIndex,
  type ReleaseIndex,
  type RolloutWave,
  serializeIndex,
} from '../bundle/release-index.js';
import type { Output } from '../cli/run.js';
import { RickError } from '../errors.js';
import { writeOutputFile } from './output-file.js';
import { DEFAULT_PASSPHRASE_ENV, readInput } from './sign.js';

/** A bundle version, or every bundle of a version: `authentik@1.2.0` or `1.2.0`. */
export interface ReleaseTarget {
  bundle?: string;
  version: string;
}

/** A wave relative to the time the index is issued. */
export interface WaveSpec {
  afterMs: number;
  percent: number;
}

export interface AddedRelease {
  bundle: string;
  version: string;
  channel: IndexRelease['channel'];
  sha256: string;
  size: number;
  files: IndexRelease['files'];
  location?: string;
}

export interface IndexChanges {
  add: AddedRelease[];
  /** Waves for the added releases and for those of `rollout`. */
  waves?: WaveSpec[];
  rollout: ReleaseTarget[];
  yank: ReleaseTarget[];
  /** Required with `yank`. */
  reason?: string;
  unyank: ReleaseTarget[];
}

export const DEFAULT_VALID_FOR_MS = 7 * 24 * 3600 * 1000;

/** The shortest validity, and the least time left before expiry, of a signed index. */
export const MIN_VALID_MS = 3_600_000;

const usage = (message: string, hint?: string) =>
  new RickError('USAGE', message, hint === undefined ? {} : { hint });

/** `30m`, `12h`, `7d` → milliseconds. */
export function parseDuration(text: string, what: string): number {
  const match = /^([0-9]+)([mhd])$/.exec(text.trim());
  if (!match)
    throw usage(`${what} ${JSON.stringify(text)} is not a duration such as 30m, 12h or 7d`);
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

/** `0h:5,24h:50,72h:100` → waves: after this long, up to this percentage of hosts. */
export function parseWaves(text: string): WaveSpec[] {
  const waves = text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => {
      const match = /^([^:]+):([0-9]+)$/.exec(part);
      if (!match) {
        throw usage(
          `wave ${JSON.stringify(part)} is not DELAY:PERCENT`,
          'write waves as --waves 0h:5,24h:50,72h:100 (after the index is issued: minutes, hours or days)',
        );
      }
      const percent = Number(match[2]);
      if (percent < 1 || percent > 100)
        throw usage(`wave ${part}: the percentage must be 1 to 100`);
      return { afterMs: parseDuration(match[1]!, `wave ${part}:`), percent };
    });
  if (waves.length === 0) throw usage('--waves names no wave');
  waves.forEach((w, i) => {
    const previous = waves[i - 1];
    if (previous && (w.afterMs <= previous.afterMs || w.percent <= previous.percent)) {
      throw usage(
        `waves must start one after the other, each covering more hosts (${text})`,
        'for example --waves 0h:5,24h:50,72h:100',
      );
    }
  });
  return waves;
}

/** `authentik@1.2.0` or `1.2.0`. */
export function parseTarget(text: string): ReleaseTarget {
  const at = text.lastIndexOf('@');
  const bundle = at > 0 ? text.slice(0, at) : undefined;
  const version = (at > 0 ? text.slice(at + 1) : text).replace(/^v/, '');
  if (semver.valid(version) !== version) {
    throw usage(`${JSON.stringify(text)} names no version: write 1.2.0 or authentik@1.2.0`);
  }
  return bundle === undefined ? { version } : { bundle, version };
}

function describeTarget(t: ReleaseTarget): string {
  return t.bundle === undefined ? `version ${t.version}` : `${t.bundle} ${t.version}`;
}

/** ISO time without milliseconds when there are none. */
function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

function matches(t: ReleaseTarget, r: { bundle: string; version: string }): boolean {
  return r.version === t.version && (t.bundle === undefined || t.bundle === r.bundle);
}

/**
 * The new index: the previous one with the changes applied, a higher serial
 * (the previous one plus one, and at least the issue time in seconds since
 * the epoch, so that an index started afresh still outranks every older
 * one), issued at `issued` and valid for `validForMs`. Returns what changed,
 * one line each.
 */
export function planIndex(
  previous: ReleaseIndex | undefined,
  changes: IndexChanges,
  issued: Date,
  validForMs: number,
): { index: ReleaseIndex; notes: string[] } {
  const issuedMs = issued.getTime();
  const notes: string[] = [];
  const releases = (previous?.releases ?? []).map((r) => ({ ...r }));
  const yanked = (previous?.yanked ?? []).map((y) => ({ ...y }));
  const waves: RolloutWave[] | undefined = changes.waves?.map((w) => ({
    at: iso(issuedMs + w.afterMs),
    percent: w.percent,
  }));

  for (const add of changes.add) {
    const existing = releases.find((r) => r.bundle === add.bundle && r.version === add.version);
    if (existing) {
      if (existing.sha256 !== add.sha256) {
        throw usage(
          `${add.bundle} ${add.version} is already in the index with sha256 ${existing.sha256}, not ${add.sha256}`,
          'a published version never changes: publish a new version',
        );
      }
      notes.push(`${add.bundle} ${add.version} is already listed`);
      if (waves) existing.rollout = waves;
      continue;
    }
    releases.push({
      bundle: add.bundle,
      version: add.version,
      channel: add.channel,
      sha256: add.sha256,
      size: add.size,
      files: add.files,
      ...(add.location ? { location: add.location } : {}),
      published: iso(issuedMs),
      ...(waves ? { rollout: waves } : {}),
    });
    notes.push(`added ${add.bundle} ${add.version} (${add.channel})`);
  }

  if (changes.rollout.length > 0 && !waves) {
    throw usage(
      '--rollout needs --waves',
      'for example --rollout 1.2.0 --waves 0h:5,24h:50,72h:100',
    );
  }
  for (const target of changes.rollout) {
    const hit = releases.filter((r) => matches(target, r));
    if (hit.length === 0)
      throw usage(`--rollout: no release of ${describeTarget(target)} in the index`);
    for (const r of hit) {
      r.rollout = waves;
      notes.push(`rollout of ${r.bundle} ${r.version}: ${describeWaves(waves ?? [])}`);
    }
  }

  if (changes.yank.length > 0 && !changes.reason) {
    throw usage('--yank needs --reason', 'say in one line what is wrong with the version');
  }
  for (const target of changes.yank) {
    const hit = releases.filter((r) => matches(target, r));
    // A version published before the index (or by hand) may be yanked by its full name.
    const names =
      hit.length > 0
        ? hit.map((r) => ({ bundle: r.bundle, version: r.version }))
        : target.bundle !== undefined
          ? [{ bundle: target.bundle, version: target.version }]
          : [];
    if (names.length === 0) {
      throw usage(
        `--yank: no release of ${describeTarget(target)} in the index`,
        'name the bundle too (authentik@1.2.0) to yank a version the index does not list',
      );
    }
    for (const n of names) {
      const existing = yanked.find((y) => y.bundle === n.bundle && y.version === n.version);
      const reason = changes.reason as string;
      if (existing) existing.reason = reason;
      else yanked.push({ ...n, reason, yanked: iso(issuedMs) });
      notes.push(`yanked ${n.bundle} ${n.version}: ${reason}`);
    }
  }
  for (const target of changes.unyank) {
    const before = yanked.length;
    const kept = yanked.filter((y) => !matches(target, y));
    if (kept.length === before) throw usage(`--unyank: ${describeTarget(target)} is not yanked`);
    for (const y of yanked.filter((x) => matches(target, x))) {
      notes.push(`unyanked ${y.bundle} ${y.version}`);
    }
    yanked.splice(0, yanked.length, ...kept);
  }

  const serial = Math.max((previous?.serial ?? 0) + 1, Math.floor(issuedMs / 1000));
  const index: ReleaseIndex = {
    schemaVersion: INDEX_SCHEMA_VERSION,
    serial,
    issued: iso(issuedMs),
    expires: iso(issuedMs + validForMs),
    releases,
    yanked,
  };
  // The host's own parser is the judge of what is written.
  return { index: parseIndex(serializeIndex(index), 'the new index'), notes };
}

function describeWaves(waves: readonly RolloutWave[]): string {
  return waves.map((w) => `${w.percent}% from ${w.at}`).join(', ');
}

export interface IndexCommandOptions {
  /** The armored private signing key. */
  key: string;
  passphraseEnv?: string;
  /** Directory receiving index.json and index.json.sig. */
  out: string;
  /** The index published before (its signature `<file>.sig` beside it). */
  previous?: string;
  /** Start a new index: the only way to go without `previous`. */
  newIndex?: boolean;
  /** Keys that signed the previous index; default: the signing key itself. */
  keyring?: string;
  add: string[];
  location?: string;
  channel?: string;
  waves?: string;
  rollout: string[];
  yank: string[];
  reason?: string;
  unyank: string[];
  validFor?: string;
  /** The issue time (ISO 8601); default now. */
  issued?: string;
}

/**
 * Refuses the combinations that would publish a broken index or that change
 * nothing (a flag given for nothing is a mistake about what was asked).
 * Pure: judged on the options alone, before anything is read.
 */
export function validateIndexOptions(options: IndexCommandOptions): void {
  if (options.previous !== undefined && options.newIndex) {
    throw usage(
      '--previous and --new contradict each other',
      'start from --previous, or start a new index with --new',
    );
  }
  if (options.previous === undefined && !options.newIndex) {
    throw usage(
      'no --previous index: the new index would list none of the releases and yanks published so far',
      'pass --previous index.json (the index published now, its .sig beside it), or --new to start the first index',
    );
  }
  const pointless = (flag: string, needs: string) =>
    usage(`${flag} changes nothing without ${needs}`, `leave ${flag} out, or add ${needs}`);
  if (options.keyring !== undefined && options.previous === undefined) {
    throw pointless('--keyring', '--previous (it checks the signature of the previous index)');
  }
  if (options.location !== undefined && options.add.length === 0)
    throw pointless('--location', '--add');
  if (options.channel !== undefined && options.add.length === 0)
    throw pointless('--channel', '--add');
  if (options.waves !== undefined && options.add.length === 0 && options.rollout.length === 0) {
    throw pointless('--waves', '--add or --rollout');
  }
  if (options.reason !== undefined && options.yank.length === 0)
    throw pointless('--reason', '--yank');
}

/**
 * Refuses an index that hosts would refuse as expired, or within the hour:
 * published late, it would stop every fleet's updates on arrival.
 */
export function checkExpiry(issued: Date, validForMs: number, now: Date): void {
  const expires = issued.getTime() + validForMs;
  if (expires - now.getTime() < MIN_VALID_MS) {
    const when = iso(expires);
    throw usage(
      expires <= now.getTime()
        ? `the index would expire at ${when}, before now (${iso(now.getTime())}): hosts refuse an expired index`
        : `the index would expire at ${when}, within the hour of now (${iso(now.getTime())})`,
      'issue it now (leave out --issued) or give a longer --valid-for',
    );
  }
}

export interface IndexDeps {
  output: Output;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Default: the system clock. */
  now?: () => Date;
}

export interface IndexResult {
  index: ReleaseIndex;
  indexPath: string;
  signaturePath: string;
  fingerprint: string;
  notes: string[];
}

/** Reads, checks, plans, signs and writes. See the module comment. */
export async function writeReleaseIndex(
  options: IndexCommandOptions,
  deps: IndexDeps,
): Promise<IndexResult> {
  validateIndexOptions(options);
  const at = (p: string) => resolve(deps.cwd, p);
  const { fingerprintOf, parsePublicKeys, readSigningKey, signDetached, verifyDetached } =
    await import('../bundle/openpgp.js');
  const passphrase = deps.env[options.passphraseEnv ?? DEFAULT_PASSPHRASE_ENV];
  const key = await readSigningKey(
    (await readInput(at(options.key), 'signing key')).toString('utf8'),
    passphrase === '' ? undefined : passphrase,
    options.passphraseEnv ?? DEFAULT_PASSPHRASE_ENV,
  );
  const trusted = options.keyring
    ? await parsePublicKeys(await readInput(at(options.keyring), 'keyring'), options.keyring)
    : [key.toPublic()];

  let previous: ReleaseIndex | undefined;
  if (options.previous) {
    const file = at(options.previous);
    const bytes = await readInput(file, 'previous index');
    const signature = await readInput(`${file}.sig`, 'signature of the previous index').catch(
      () => {
        throw new RickError(
          'SIGNATURE_MISSING',
          `no signature ${file}.sig beside the previous index`,
          {
            hint: 'download index.json.sig with index.json',
          },
        );
      },
    );
    try {
      await verifyDetached(bytes, signature, trusted);
    } catch (error) {
      throw new RickError(
        'SIGNATURE_INVALID',
        `the previous index ${file} is not signed by ${options.keyring ? `a key of ${options.keyring}` : 'the signing key'}: ${error instanceof Error ? error.message : String(error)}`,
        {
          hint: 'pass --keyring with the key that signed it (after a key change), or check where it came from',
        },
      );
    }
    previous = parseIndex(bytes.toString('utf8'), `previous index ${file}`);
  }

  if (
    options.channel !== undefined &&
    !(indexChannels as readonly string[]).includes(options.channel)
  ) {
    throw usage(`--channel must be stable or prerelease, not ${JSON.stringify(options.channel)}`);
  }
  if (options.location !== undefined && !locationPattern.test(options.location)) {
    throw usage(
      `--location ${JSON.stringify(options.location)} is not a relative directory`,
      'for example ../../download/v1.2.0/ (ending in /), or leave it out for the directory of the index',
    );
  }
  const add: AddedRelease[] = [];
  if (options.add.length > 0) {
    const { parseBundleArchive } = await import('../bundle/archive.js');
    const { createHash } = await import('node:crypto');
    for (const file of options.add.map(at)) {
      const bytes = await readInput(file, 'bundle');
      const signature = await readInput(`${file}.sig`, 'bundle signature').catch(() => {
        throw new RickError('SIGNATURE_MISSING', `no signature ${file}.sig beside ${file}`, {
          hint: 'sign it first: rick-bundle sign',
        });
      });
      // What hosts will check: the signature by this very key, then the archive.
      await verifyDetached(bytes, signature, [key.toPublic()]).catch((error: unknown) => {
        throw new RickError(
          'SIGNATURE_INVALID',
          `${file}.sig is not a signature of ${file} by the signing key: ${error instanceof Error ? error.message : String(error)}`,
        );
      });
      const { manifest } = parseBundleArchive(bytes);
      add.push({
        bundle: manifest.name,
        version: manifest.version,
        channel:
          (options.channel as AddedRelease['channel'] | undefined) ??
          (semver.prerelease(manifest.version) ? 'prerelease' : 'stable'),
        sha256: createHash('sha256').update(bytes).digest('hex'),
        size: bytes.length,
        files: { bundle: basename(file), signature: `${basename(file)}.sig` },
        ...(options.location ? { location: options.location } : {}),
      });
    }
  }

  const now = deps.now?.() ?? new Date();
  const issued = options.issued === undefined ? now : new Date(options.issued);
  if (Number.isNaN(issued.getTime())) {
    throw usage(
      `--issued ${JSON.stringify(options.issued)} is not a time such as 2026-01-01T00:00:00Z`,
    );
  }
  const validForMs =
    options.validFor === undefined
      ? DEFAULT_VALID_FOR_MS
      : parseDuration(options.validFor, '--valid-for');
  if (validForMs < MIN_VALID_MS) {
    throw usage(`--valid-for ${options.validFor}: an index must be valid for at least 1h`);
  }
  checkExpiry(issued, validForMs, now);
  const { index, notes } = planIndex(
    previous,
    {
      add,
      ...(options.waves === undefined ? {} : { waves: parseWaves(options.waves) }),
      rollout: options.rollout.map(parseTarget),
      yank: options.yank.map(parseTarget),
      ...(options.reason === undefined ? {} : { reason: options.reason }),
      unyank: options.unyank.map(parseTarget),
    },
    issued,
    validForMs,
  );
  if (previous && index.serial <= previous.serial) {
    throw new RickError('INTERNAL', 'the new serial is not higher than the previous one');
  }
  const text = serializeIndex(index);
  const signature = await signDetached(Buffer.from(text), key);
  await mkdir(at(options.out), { recursive: true });
  const indexPath = resolve(at(options.out), INDEX_FILE);
  const signaturePath = resolve(at(options.out), INDEX_SIGNATURE_FILE);
  // The signature first: a reader finding the new index finds its signature too.
  await writeOutputFile(signaturePath, signature, { mode: 0o644 });
  await writeOutputFile(indexPath, text, { mode: 0o644 });
  return { index, indexPath, signaturePath, fingerprint: fingerprintOf(key), notes };
}
