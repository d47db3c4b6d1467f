/**
 * Turns a verified bundle's files into what the host writes into a
 * generation: every install-time placeholder replaced by plain string
 * substitution (no template engine), or a refusal naming every bad token.
 * Pure.
 *
 * Rules:
 * - Tokens are replaced in every file except the installer (which carries the
 *   token syntax in its own source code).
 * - `gid`/`uid`/`secret` tokens must be declared in the manifest's facts and
 *   have a value in `facts`; an undeclared token is BUNDLE_INVALID, a declared
 *   fact without a value is FACT_MISSING.
 * - Secrets may only appear in env files: units, Caddy sites, sysusers and tmpfiles
 *   fragments are world-readable once generated, env files are written 0600.
 * - `path` tokens resolve to the file's place in generation `generation`
 *   (hostBundleFile) and must name an env, sysusers.d or tmpfiles.d file of
 *   this bundle, the only kinds written there (pathTokenKinds).
 * - A malformed or unterminated token is BUNDLE_INVALID.
 * - A value with a control character (a newline would add a line to a unit
 *   or env file) is refused.
 */

import {
  type FileKind,
  type Manifest,
  pathTokenKinds,
  pathTokenRefusal,
  templateKinds,
} from '../bundle/manifest.js';
import {
  isFactKind,
  type PlaceholderRef,
  percentEncode,
  placeholderKey,
  substitutePlaceholders,
  TOKEN_PREFIX,
} from '../bundle/placeholders.js';
import { RickError } from '../errors.js';
import { hostBundleFile, RICK_STATE_DIR } from './paths.js';

/** The parts of BundleContents substitution needs (see src/bundle/archive.ts). */
export interface SubstitutionInput {
  manifest: Manifest;
  files: ReadonlyMap<string, Buffer>;
}

const substitutedKinds: ReadonlySet<FileKind> = new Set(templateKinds);
const secretKinds: ReadonlySet<FileKind> = new Set(['env']);
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/;
const MAX_LISTED = 25;

function list(problems: readonly string[]): string {
  const rest = problems.length - MAX_LISTED;
  const shown = problems.slice(0, MAX_LISTED).join('; ');
  return rest > 0 ? `${shown}; and ${rest} more` : shown;
}

/**
 * Returns every file of the bundle (by bundle path) with its placeholders
 * substituted for generation `generation`. Files without tokens and installer
 * files are returned as the same buffers.
 */
export function substituteBundle(
  contents: SubstitutionInput,
  facts: ReadonlyMap<string, string>,
  generation: number,
): Map<string, Buffer> {
  if (!Number.isSafeInteger(generation) || generation < 0) {
    throw new RickError('INTERNAL', `invalid generation number ${generation}`);
  }
  return substituteWith(contents, facts, (p) =>
    hostBundleFile(generation, contents.manifest.name, p),
  );
}

function substituteWith(
  contents: SubstitutionInput,
  facts: ReadonlyMap<string, string>,
  pathFor: (bundlePath: string) => string,
): Map<string, Buffer> {
  const { manifest, files } = contents;
  const declared = new Set(manifest.facts.map((f) => placeholderKey(f)));
  const bundleFiles = new Map(manifest.files.map((f) => [f.path, f.kind]));
  const invalid: string[] = [];
  const missing: string[] = [];
  const unsafe: string[] = [];
  const out = new Map<string, Buffer>();

  for (const entry of manifest.files) {
    const data = files.get(entry.path);
    if (data === undefined) {
      invalid.push(`${entry.path}: listed in the manifest but not in the bundle`);
      continue;
    }
    if (!substitutedKinds.has(entry.kind) || !data.includes(TOKEN_PREFIX)) {
      out.set(entry.path, data);
      continue;
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(data);
    } catch {
      invalid.push(`${entry.path}: holds placeholders but is not UTF-8 text`);
      continue;
    }
    const resolve = (ref: PlaceholderRef): string | undefined => {
      const token = `@@rick:${ref.kind}:${ref.name}${ref.encoding ? `:${ref.encoding}` : ''}@@`;
      if (ref.kind === 'path') {
        const kind = bundleFiles.get(ref.name);
        if (kind === undefined) {
          invalid.push(`${entry.path}: ${token} names no file of the bundle`);
          return token;
        }
        if (!pathTokenKinds.has(kind)) {
          invalid.push(`${entry.path}: ${token} names ${pathTokenRefusal(kind)}`);
          return token;
        }
        return pathFor(ref.name);
      }
      if (!isFactKind(ref.kind)) return undefined;
      const key = placeholderKey(ref);
      if (!declared.has(key)) {
        invalid.push(`${entry.path}: ${token} is not declared in the manifest's facts`);
        return token;
      }
      if (ref.kind === 'secret' && !secretKinds.has(entry.kind)) {
        invalid.push(
          `${entry.path}: ${token} puts a secret into a ${entry.kind} file, which is world-readable; secrets belong in env files`,
        );
        return token;
      }
      const value = facts.get(key);
      if (value === undefined) {
        missing.push(`${entry.path}: ${token}`);
        return token;
      }
      if (controlCharacter.test(value)) {
        unsafe.push(`${entry.path}: value of ${key} contains a control character`);
        return token;
      }
      return value;
    };
    const result = substitutePlaceholders(text, resolve);
    // The resolver answers every well-formed token (problems were recorded
    // above), so whatever is left unresolved is malformed.
    for (const u of result.unresolved) invalid.push(`${entry.path}: malformed token ${u}`);
    out.set(entry.path, Buffer.from(result.text, 'utf8'));
  }
  if (invalid.length) {
    throw new RickError('BUNDLE_INVALID', `bad placeholders: ${list(invalid)}`, {
      hint: 'rebuild the bundle; its placeholders do not match its manifest',
    });
  }
  if (unsafe.length) throw new RickError('SECRETS_INSECURE', list(unsafe));
  if (missing.length) {
    throw new RickError('FACT_MISSING', `no value for placeholders: ${list(missing)}`);
  }
  return out;
}

/** What normalizeGenerationPaths puts in place of a generation number. */
export const GENERATION_MARKER = '@generation@';

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const plainPrefix = `${RICK_STATE_DIR}/generations/`;
const encodedPrefix = percentEncode(plainPrefix);
const generationPath = new RegExp(`${escapeRegExp(plainPrefix)}[0-9]+(?![0-9])`, 'g');
const encodedGenerationPath = new RegExp(`${escapeRegExp(encodedPrefix)}[0-9]+(?![0-9])`, 'g');

/**
 * Replaces every `/var/lib/rick/generations/<n>` with
 * `/var/lib/rick/generations/@generation@` (and the percent-encoded form of a
 * `path` token with `:url` likewise), so that two renderings of the same
 * unit for different generations compare equal: "only the generation path
 * differs" means "did not change" for restart decisions. Apply it to both
 * sides (the live generation's file and the new one).
 */
export function normalizeGenerationPaths(text: string): string {
  return text
    .replace(generationPath, `${plainPrefix}${GENERATION_MARKER}`)
    .replace(encodedGenerationPath, `${encodedPrefix}${percentEncode(GENERATION_MARKER)}`);
}

/**
 * Renders the bundle with every path token pointing into the generation
 * marker instead of a real generation: the form to compare against
 * normalizeGenerationPaths() of a live file.
 */
export function substituteBundleNormalized(
  contents: SubstitutionInput,
  facts: ReadonlyMap<string, string>,
): Map<string, Buffer> {
  return substituteWith(
    contents,
    facts,
    (p) =>
      `${RICK_STATE_DIR}/generations/${GENERATION_MARKER}/bundles/${contents.manifest.name}/${p}`,
  );
}
