/**
 * Rendering a bundle's files for one generation from what the generation
 * recorded: its shipped files (source.json), the facts resolved at install
 * (facts.json) and the secret values it was rendered with (secrets.json,
 * 0600). Carrying a bundle into a new generation, and verify's drift check,
 * render it again exactly as the install did, through the same substitution
 * (src/host/substitute.ts); nothing rendered is ever rewritten in place.
 *
 * The masked rendering, for the plan's diff, never sees a secret value.
 *
 * `path` tokens resolve to the generation's own bundle directory, so the only
 * difference between the same file in two generations is that prefix;
 * `normalizeGenerationPaths` removes it for change detection.
 */

import type { Manifest } from '../bundle/manifest.js';
import { scanPlaceholders, substitutePlaceholders } from '../bundle/placeholders.js';
import { hostBundleFile } from './paths.js';
import { substituteBundle } from './substitute.js';

/** Non-secret facts as recorded in a generation's facts.json. */
export interface RecordedFacts {
  gid: Record<string, number>;
  uid: Record<string, number>;
  /** Names of the secrets the bundle used; never their values. */
  secrets: string[];
}

const SENTINEL = 'RICKMASKED';

export interface RenderContext {
  bundle: string;
  generation: number;
  facts: RecordedFacts;
}

/** True when a source file carries a secret: its rendering is private (0600). */
export function hasSecretTokens(source: string): boolean {
  return scanPlaceholders(source).refs.some((r) => r.kind === 'secret');
}

/**
 * Renders a source file with every secret replaced by `***secret:<name>***`.
 * Secrets are masked after encoding, so a URL-encoded secret is masked the same way.
 */
export function renderMasked(source: string, ctx: RenderContext): string {
  const names: string[] = [];
  const { text } = substitutePlaceholders(source, (ref) => {
    if (ref.kind === 'secret') {
      names.push(ref.name);
      return `${SENTINEL}${names.length - 1}${SENTINEL}`;
    }
    return resolvePublic(ref.kind, ref.name, ctx);
  });
  return text.replace(
    new RegExp(`${SENTINEL}(\\d+)${SENTINEL}`, 'g'),
    (_, i: string) => `***secret:${names[Number(i)] ?? '?'}***`,
  );
}

function resolvePublic(kind: string, name: string, ctx: RenderContext): string | undefined {
  switch (kind) {
    case 'path':
      return hostBundleFile(ctx.generation, ctx.bundle, name);
    case 'gid': {
      const v = ctx.facts.gid[name];
      return v === undefined ? undefined : String(v);
    }
    case 'uid': {
      const v = ctx.facts.uid[name];
      return v === undefined ? undefined : String(v);
    }
    default:
      return undefined;
  }
}

/** What a generation keeps of one bundle to render it again. */
export interface RecordedBundle {
  manifest: Manifest;
  /** Files as shipped (unsubstituted), by bundle path; installer files excluded. */
  sources: ReadonlyMap<string, Buffer>;
  facts: RecordedFacts;
  /** The secret values the bundle was rendered with, by name. */
  secrets: ReadonlyMap<string, string>;
}

/** The fact values of a recorded bundle, keyed as substitution wants them (`gid:name`). */
export function recordedValues(
  bundle: Pick<RecordedBundle, 'facts' | 'secrets'>,
): Map<string, string> {
  const values = new Map<string, string>();
  for (const [name, gid] of Object.entries(bundle.facts.gid))
    values.set(`gid:${name}`, String(gid));
  for (const [name, uid] of Object.entries(bundle.facts.uid))
    values.set(`uid:${name}`, String(uid));
  for (const [name, value] of bundle.secrets) values.set(`secret:${name}`, value);
  return values;
}

/**
 * Every file of a recorded bundle (installer files aside) rendered for
 * `generation`, by the substitution the install used.
 */
export function renderRecordedBundle(
  bundle: RecordedBundle,
  generation: number,
): Map<string, Buffer> {
  const manifest = {
    ...bundle.manifest,
    files: bundle.manifest.files.filter((f) => f.kind !== 'installer'),
  };
  return substituteBundle({ manifest, files: bundle.sources }, recordedValues(bundle), generation);
}
