/**
 * Install-time placeholders.
 *
 * A value known only on the host (a GID, a UID, a secret, the path of the
 * generation being written) is rendered at build time to an opaque token:
 *
 *     @@rick:<kind>:<name>@@          e.g. @@rick:gid:postgres-clients@@
 *     @@rick:<kind>:<name>:<enc>@@    e.g. @@rick:secret:cache_password:url@@
 *
 * The syntax avoids `%` (systemd specifiers), `$`/`${}` (environment
 * expansion) and `{{ }}` (Jinja), so a token survives every layer unchanged
 * until the host replaces it by plain string substitution.
 */

export const placeholderKinds = ['gid', 'uid', 'secret', 'path'] as const;
export type PlaceholderKind = (typeof placeholderKinds)[number];

/** Kinds that are host facts recorded in the manifest; `path` is derived from the generation. */
export const factKinds = ['gid', 'uid', 'secret'] as const;
export type FactKind = (typeof factKinds)[number];

export const placeholderEncodings = ['url'] as const;
export type PlaceholderEncoding = (typeof placeholderEncodings)[number];

export interface PlaceholderRef {
  kind: PlaceholderKind;
  name: string;
  encoding?: PlaceholderEncoding;
}

export const TOKEN_PREFIX = '@@rick:';
const TOKEN_SUFFIX = '@@';

/** Names each kind accepts; checked at build and again on the host. */
const namePatterns: Record<PlaceholderKind, RegExp> = {
  // POSIX portable user and group names, as useradd and sysusers accept them.
  gid: /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/,
  uid: /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/,
  secret: /^[A-Za-z_][A-Za-z0-9_]{0,127}$/,
  // A path inside the generation, relative, without `..`.
  path: /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/,
};

// Anything that starts like a token, up to the next `@@` (or the end of the line).
const LOOSE_TOKEN = /@@rick:([^@\n]*)(@@)?/g;

export function isPlaceholderKind(value: string): value is PlaceholderKind {
  return (placeholderKinds as readonly string[]).includes(value);
}

export function isFactKind(kind: PlaceholderKind): kind is FactKind {
  return (factKinds as readonly string[]).includes(kind);
}

/** Why a name is not acceptable for a kind, or undefined when it is. */
export function checkPlaceholderName(kind: PlaceholderKind, name: string): string | undefined {
  return namePatterns[kind].test(name) ? undefined : `invalid ${kind} name ${JSON.stringify(name)}`;
}

export function formatPlaceholder(ref: PlaceholderRef): string {
  const problem = checkPlaceholderName(ref.kind, ref.name);
  if (problem) throw new TypeError(problem);
  const enc = ref.encoding ? `:${ref.encoding}` : '';
  return `${TOKEN_PREFIX}${ref.kind}:${ref.name}${enc}${TOKEN_SUFFIX}`;
}

export function placeholderKey(ref: Pick<PlaceholderRef, 'kind' | 'name'>): string {
  return `${ref.kind}:${ref.name}`;
}

export interface ScanResult {
  /** Well-formed tokens in order of appearance (duplicates kept). */
  refs: PlaceholderRef[];
  /** Text of every token-like string that is not well formed, e.g. an unknown kind. */
  malformed: string[];
}

function parseTokenBody(body: string): PlaceholderRef | string {
  const parts = body.split(':');
  const [kind, name, encoding, ...rest] = parts;
  if (kind === undefined || name === undefined || rest.length > 0) return 'malformed token';
  if (!isPlaceholderKind(kind)) return `unknown placeholder kind ${JSON.stringify(kind)}`;
  const problem = checkPlaceholderName(kind, name);
  if (problem) return problem;
  if (encoding === undefined) return { kind, name };
  if (!(placeholderEncodings as readonly string[]).includes(encoding)) {
    return `unknown placeholder encoding ${JSON.stringify(encoding)}`;
  }
  return { kind, name, encoding: encoding as PlaceholderEncoding };
}

/** Finds every token in a text, and every string that looks like one but is not valid. */
export function scanPlaceholders(text: string): ScanResult {
  const refs: PlaceholderRef[] = [];
  const malformed: string[] = [];
  for (const match of text.matchAll(LOOSE_TOKEN)) {
    const [whole, body, closed] = match;
    const parsed = closed && body !== undefined ? parseTokenBody(body) : 'unterminated token';
    if (typeof parsed === 'string') malformed.push(`${whole} (${parsed})`);
    else refs.push(parsed);
  }
  return { refs, malformed };
}

/** RFC 3986 percent-encoding: everything but unreserved characters. */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export function encodeValue(value: string, encoding: PlaceholderEncoding | undefined): string {
  switch (encoding) {
    case undefined:
      return value;
    case 'url':
      return percentEncode(value);
  }
}

export interface SubstituteResult {
  text: string;
  /** Tokens the resolver had no value for, and malformed tokens, as found. */
  unresolved: string[];
}

/**
 * Replaces every token in one pass, so that a substituted value is never
 * scanned again (a secret that happens to look like a token stays a secret).
 */
export function substitutePlaceholders(
  text: string,
  resolve: (ref: PlaceholderRef) => string | undefined,
): SubstituteResult {
  const unresolved: string[] = [];
  const out = text.replace(LOOSE_TOKEN, (whole, body: string, closed: string | undefined) => {
    const parsed = closed ? parseTokenBody(body) : 'unterminated token';
    if (typeof parsed === 'string') {
      unresolved.push(`${whole} (${parsed})`);
      return whole;
    }
    const value = resolve(parsed);
    if (value === undefined) {
      unresolved.push(whole);
      return whole;
    }
    return encodeValue(value, parsed.encoding);
  });
  return { text: out, unresolved };
}
