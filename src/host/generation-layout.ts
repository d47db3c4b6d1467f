/**
 * What a generation holds and where (src/host/generations.ts tells how one
 * is written, read and made live): the record generation.json keeps, the
 * files beside each bundle's rendered ones, the combined sysusers.d and
 * tmpfiles.d fragments, and where each rendered file lives in the
 * generation directory. Pure, but for the paths it joins.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import * as z from 'zod';
import { bundleNamePattern, bundlePathPattern } from '../bundle/manifest.js';
import { checkPlaceholderName, type FactKind } from '../bundle/placeholders.js';
import type { GenerationView, RenderedBundle } from './activation/plan.js';
import { hasSecretTokens, type RecordedBundle, type RecordedFacts } from './generation-files.js';
import type { HostPaths } from './paths.js';
import '../bundle/zod.js';
import { RickError } from '../errors.js';

export const INSTALLER_FILE = 'installer/rick-install.cjs';
export const SOURCE_FILE = 'source.json';
export const SECRETS_FILE = 'secrets.json';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256');
const bundleName = z.string().regex(bundleNamePattern, 'must be a bundle name');
const bundlePath = z.string().max(255).regex(bundlePathPattern, 'must be a bundle path');
const factName = (kind: FactKind) =>
  z.string().refine((n) => checkPlaceholderName(kind, n) === undefined, `must be a ${kind} name`);

export const recordedFactsSchema = z.strictObject({
  gid: z.record(factName('gid'), z.number().int().nonnegative()),
  uid: z.record(factName('uid'), z.number().int().nonnegative()),
  secrets: z.array(factName('secret')),
});

export const secretValuesSchema = z.record(factName('secret'), z.string());

/** sha256 of each file rick keeps beside a bundle's rendered files. */
export const bundleMetaSchema = z.strictObject({
  'manifest.json': sha256Hex,
  'facts.json': sha256Hex,
  'source.json': sha256Hex,
  'secrets.json': sha256Hex.optional(),
});
export type BundleMeta = z.infer<typeof bundleMetaSchema>;

export const generationRecordSchema = z.strictObject({
  schemaVersion: z.literal(1),
  generation: z.number().int().positive(),
  createdAt: z.string(),
  /** What made this generation: the install or rollback that wrote it. */
  reason: z.string(),
  bundles: z.record(
    bundleName,
    z.strictObject({
      version: z.string(),
      /** sha256 of every rendered file, by bundle path. */
      files: z.record(bundlePath, sha256Hex),
      meta: bundleMetaSchema,
    }),
  ),
  installer: sha256Hex.optional(),
  /** sha256 of the combined sysusers.d and tmpfiles.d fragments, by generation path. */
  fragments: z.record(z.string(), sha256Hex).optional(),
});
export type GenerationRecord = z.infer<typeof generationRecordSchema>;

/** One bundle of a generation, everything needed to write it and render it again. */
export interface StoredBundle extends RenderedBundle, RecordedBundle {
  manifestBytes: Buffer;
}

export interface StoredGeneration extends GenerationView {
  bundles: ReadonlyMap<string, StoredBundle>;
  record: GenerationRecord;
  /** The installer the generation carries, if any. */
  installer?: Buffer;
}

export interface GenerationContent {
  generation: number;
  createdAt: string;
  reason: string;
  bundles: ReadonlyMap<string, StoredBundle>;
  installer?: Buffer;
}

/**
 * Every bundle's sysusers.d and tmpfiles.d fragments, combined into one file
 * of each kind at the generation's root. The host reads them at boot through
 * one link each (/etc/sysusers.d/rick.conf, /etc/tmpfiles.d/rick.conf) that
 * points through `current`, so they switch and roll back with the
 * generation: systemd-tmpfiles-setup brings a bundle's /run directories
 * back after a reboot, and a bundle that is no longer live has no lines.
 */
export const FRAGMENT_FILES = {
  sysusers: 'sysusers.d/rick.conf',
  tmpfiles: 'tmpfiles.d/rick.conf',
} as const;

/** The combined fragments of a set of bundles (see FRAGMENT_FILES), by generation path. */
export function renderFragments(bundles: Iterable<StoredBundle>): Map<string, string> {
  const out = new Map<string, string>();
  const sorted = [...bundles].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const kind of ['sysusers', 'tmpfiles'] as const) {
    const dir = `${kind === 'sysusers' ? 'sysusers.d' : 'tmpfiles.d'}/`;
    const parts = [
      `# Managed by rick: the ${dir.slice(0, -1)} fragments of this generation's bundles.\n# Do not edit: every install and rollback switches the file systemd reads.\n`,
    ];
    for (const b of sorted) {
      for (const f of b.manifest.files) {
        if (f.kind !== kind) continue;
        const data = b.files.get(f.path);
        if (data === undefined) continue;
        const text = data.toString('utf8');
        parts.push(
          `\n# ${b.name} ${b.version}: ${f.path}\n${text}${text.endsWith('\n') || text === '' ? '' : '\n'}`,
        );
      }
    }
    out.set(FRAGMENT_FILES[kind], parts.join(''));
  }
  return out;
}
const sourcesSchema = z.record(
  bundlePath,
  z.strictObject({ encoding: z.enum(['utf8', 'base64']), data: z.string() }),
);

/** A bundle's shipped files in one JSON document (text as text, anything else base64). */
export function serializeSources(sources: ReadonlyMap<string, Buffer>): string {
  const out: Record<string, { encoding: 'utf8' | 'base64'; data: string }> = {};
  for (const [path, data] of [...sources].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const text = data.toString('utf8');
    out[path] = Buffer.from(text, 'utf8').equals(data)
      ? { encoding: 'utf8', data: text }
      : { encoding: 'base64', data: data.toString('base64') };
  }
  return `${JSON.stringify(out, null, 1)}\n`;
}

export function parseSources(text: string): Map<string, Buffer> {
  const parsed = sourcesSchema.parse(JSON.parse(text));
  return new Map(Object.entries(parsed).map(([p, v]) => [p, Buffer.from(v.data, v.encoding)]));
}

export function serializeFacts(facts: RecordedFacts): string {
  return `${JSON.stringify(facts, null, 2)}\n`;
}

export function serializeSecrets(secrets: ReadonlyMap<string, string>): string {
  return `${JSON.stringify(Object.fromEntries([...secrets].sort(([a], [b]) => (a < b ? -1 : 1))), null, 2)}\n`;
}

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

export function generationDir(paths: HostPaths, n: number): string {
  return join(paths.generationsDir, String(n));
}

/**
 * Kinds whose files are shown to a host program through one link into
 * `current` (quadlet, the rick-units generator, Caddy): they live in
 * `<dir>/<bundle>/` of the generation rather than in the bundle's directory.
 */
const linkedDirs = ['quadlet/', 'systemd/', 'caddy/'] as const;

/** Where a bundle's rendered file lives inside its generation directory. */
export function renderedLocation(bundle: string, path: string): string {
  const dir = linkedDirs.find((d) => path.startsWith(d));
  return dir ? `${dir}${bundle}/${path.slice(dir.length)}` : `bundles/${bundle}/${path}`;
}

/** True when a bundle of the generation ships Caddy sites. */
export function hasSites(bundle: { files: ReadonlyMap<string, Buffer> }): boolean {
  return [...bundle.files.keys()].some((p) => p.startsWith('caddy/'));
}

/** True when a bundle of the generation ships plain systemd units. */
export function hasPlainUnits(bundle: { files: ReadonlyMap<string, Buffer> }): boolean {
  return [...bundle.files.keys()].some((p) => p.startsWith('systemd/'));
}

/** File mode of a rendered file: 0600 for env files and anything that held a secret. */
export function renderedMode(
  path: string,
  source: Buffer | undefined,
  manifestMode: number,
): number {
  if (path.startsWith('env/')) return 0o600;
  if (source && hasSecretTokens(source.toString('utf8'))) return 0o600;
  return manifestMode & 0o755;
}

export function inconsistent(message: string, hint: string): RickError {
  return new RickError('STATE_INCONSISTENT', message, { hint });
}
