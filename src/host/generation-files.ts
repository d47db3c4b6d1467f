/**
 * Rendering a bundle's files for one generation without its secrets, for
 * the three jobs that must never see a secret value: the masked diff of a
 * plan, re-rendering a carried-over bundle's secret-free files into a new
 * generation, and verify's drift check.
 *
 * `path` tokens resolve to the generation's own bundle directory, so the only
 * difference between the same file in two generations is that prefix;
 * `normalizeGenerationPaths` removes it for change detection.
 */

import { percentEncode, scanPlaceholders, substitutePlaceholders } from '../bundle/placeholders.js';
import { hostBundleFile, hostGenerationDir } from './paths.js';

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

/** True when a source file carries a secret, so it cannot be re-rendered without the secrets file. */
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

/**
 * Renders a file that has no secret tokens exactly as the installer wrote it.
 * Returns undefined when a token cannot be resolved from the recorded facts.
 */
export function renderPublic(source: string, ctx: RenderContext): string | undefined {
  const result = substitutePlaceholders(source, (ref) =>
    ref.kind === 'secret' ? undefined : resolvePublic(ref.kind, ref.name, ctx),
  );
  return result.unresolved.length ? undefined : result.text;
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

function prefixes(generation: number): string[] {
  const plain = `${hostGenerationDir(generation)}/`;
  return [plain, percentEncode(plain)];
}

/**
 * Moves a rendered file from generation `from` to generation `to` by rewriting
 * its generation paths: how a carried-over file that holds secrets is
 * re-rendered without reading the secrets again.
 */
export function moveGenerationPaths(text: string, from: number, to: number): string {
  const [fPlain, fEncoded] = prefixes(from);
  const [tPlain, tEncoded] = prefixes(to);
  return text.split(fPlain!).join(tPlain!).split(fEncoded!).join(tEncoded!);
}
