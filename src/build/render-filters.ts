/**
 * The filters and template functions bundle templates may use: the Ansible
 * filters the ported templates need, and the host-fact functions that render
 * to install-time placeholder tokens. Pure: no I/O, no nunjucks.
 */
import {
  formatPlaceholder,
  type PlaceholderRef,
  percentEncode,
  scanPlaceholders,
} from '../bundle/placeholders.js';

/** Thrown by a filter or function; the renderer adds the template file and line. */
export class TemplateFunctionError extends Error {
  /** The filter that refused, when a filter did (the renderer locates it by name). */
  filter: string | undefined;

  constructor(message: string) {
    super(message);
    this.name = 'TemplateFunctionError';
  }
}

const TOKEN = /@@rick:[^@\n]*@@/g;

function parseToken(token: string): PlaceholderRef {
  const { refs, malformed } = scanPlaceholders(token);
  const ref = refs[0];
  if (!ref || malformed.length > 0) {
    throw new TemplateFunctionError(`malformed placeholder ${token}`);
  }
  return ref;
}

function containsSecret(value: string): boolean {
  return [...value.matchAll(TOKEN)].some((m) => parseToken(m[0]).kind === 'secret');
}

function placeholderFunction(kind: 'gid' | 'uid', what: string) {
  return (name: unknown): string => {
    if (typeof name !== 'string') {
      throw new TemplateFunctionError(`${kind}() takes the ${what} name as a string`);
    }
    try {
      return formatPlaceholder({ kind, name });
    } catch (error) {
      throw new TemplateFunctionError(`${kind}(): ${(error as Error).message}`);
    }
  };
}

/** `gid("postgres-clients")`: the host's GID of a group, resolved at install time. */
export const gid = placeholderFunction('gid', 'group');
/** `uid("authentik")`: the host's UID of a user, resolved at install time. */
export const uid = placeholderFunction('uid', 'user');

/** `secret("name")`, or `secret("name", "url")` for a value percent-encoded by the host. */
export function secret(name: unknown, encoding?: unknown): string {
  if (typeof name !== 'string') throw new TemplateFunctionError('secret() takes a name string');
  if (encoding !== undefined && encoding !== 'url') {
    throw new TemplateFunctionError(
      `secret(): unknown encoding ${JSON.stringify(encoding)} (only "url")`,
    );
  }
  try {
    return formatPlaceholder({ kind: 'secret', name, ...(encoding === 'url' ? { encoding } : {}) });
  } catch (error) {
    throw new TemplateFunctionError(`secret(): ${(error as Error).message}`);
  }
}

/** `bundle_path("env/x.env")`: where the host puts that bundle file in the generation. */
export function bundlePath(path: unknown): string {
  if (typeof path !== 'string') throw new TemplateFunctionError('bundle_path() takes a string');
  try {
    return formatPlaceholder({ kind: 'path', name: path });
  } catch (error) {
    throw new TemplateFunctionError(`bundle_path(): ${(error as Error).message}`);
  }
}

/** Python's os.path.dirname, as Ansible's `dirname` filter uses it. */
export function dirname(value: unknown): string {
  const s = String(value);
  const i = s.lastIndexOf('/') + 1;
  let head = s.slice(0, i);
  if (head && head !== '/'.repeat(head.length)) head = head.replace(/\/+$/, '');
  return head;
}

/** Python's os.path.basename, as Ansible's `basename` filter uses it. */
export function basename(value: unknown): string {
  const s = String(value);
  return s.slice(s.lastIndexOf('/') + 1);
}

/** Python's shlex.quote. A secret's value is unknown at build time, so it cannot be quoted. */
export function quote(value: unknown): string {
  const s = value === undefined || value === null ? '' : String(value);
  if (containsSecret(s)) {
    throw new TemplateFunctionError(
      'quote cannot be applied to a secret: its value is only known on the host',
    );
  }
  if (s === '') return "''";
  if (/^[\w@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'"'"'`)}'`;
}

/** Ansible's `bool`: yes/on/1/true (any case) are true, everything else false. */
export function bool(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value === 1;
  if (typeof value === 'string') return ['yes', 'on', '1', 'true'].includes(value.toLowerCase());
  return false;
}

function refuseSecretInJson(value: unknown): void {
  if (containsSecret(JSON.stringify(value) ?? '')) {
    throw new TemplateFunctionError(
      'to_json cannot serialise a secret: its value is only known on the host',
    );
  }
}

export function toJson(value: unknown): string {
  refuseSecretInJson(value);
  return JSON.stringify(value) ?? 'null';
}

export function toNiceJson(value: unknown, indent: unknown = 4): string {
  refuseSecretInJson(value);
  return JSON.stringify(value, null, Number(indent)) ?? 'null';
}

function urlencodeString(s: string): string {
  let out = '';
  let last = 0;
  for (const match of s.matchAll(TOKEN)) {
    const index = match.index ?? 0;
    out += percentEncode(s.slice(last, index));
    const ref = parseToken(match[0]);
    if (ref.encoding) {
      throw new TemplateFunctionError(`${match[0]} is already URL-encoded`);
    }
    // GIDs and UIDs are digits; secrets and paths are encoded by the host.
    out +=
      ref.kind === 'gid' || ref.kind === 'uid'
        ? match[0]
        : formatPlaceholder({ kind: ref.kind, name: ref.name, encoding: 'url' });
    last = index + match[0].length;
  }
  return out + percentEncode(s.slice(last));
}

/**
 * Percent-encodes text (RFC 3986, as the host encodes secrets); a placeholder
 * inside becomes its `:url` form, so `secret("pw") | urlencode` is the
 * host-encoded secret. A mapping becomes a query string.
 */
export function urlencode(value: unknown): string {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${urlencodeString(k)}=${urlencodeString(String(v))}`)
      .join('&');
  }
  return urlencodeString(String(value));
}

/** Ansible's `mandatory`: an undefined value is an error. */
export function mandatory(value: unknown, message?: unknown): unknown {
  if (value === undefined) {
    throw new TemplateFunctionError(
      typeof message === 'string' ? message : 'mandatory variable not defined',
    );
  }
  return value;
}

/** Ansible's `regex_replace`, with Python's `\1` back-references. */
export function regexReplace(value: unknown, pattern: unknown, replacement: unknown = ''): string {
  const re = new RegExp(String(pattern), 'g');
  return String(value).replace(re, String(replacement).replace(/\\(\d+)/g, '$$$1'));
}

/** Ansible's `regex_escape`: the text as a regular expression that matches it literally. */
export function regexEscape(value: unknown): string {
  const s = String(value);
  if (containsSecret(s)) {
    throw new TemplateFunctionError('regex_escape cannot be applied to a secret');
  }
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function ternary(value: unknown, whenTrue: unknown, whenFalse: unknown): unknown {
  return value ? whenTrue : whenFalse;
}

export function b64encode(value: unknown): string {
  const s = String(value);
  if (containsSecret(s)) {
    throw new TemplateFunctionError('b64encode cannot be applied to a secret');
  }
  return Buffer.from(s, 'utf8').toString('base64');
}

/** Filters added to (or replacing) nunjucks' built-ins. */
export const ansibleFilters: Record<string, (...args: never[]) => unknown> = {
  dirname,
  basename,
  quote,
  bool,
  to_json: toJson,
  to_nice_json: toNiceJson,
  urlencode,
  mandatory,
  regex_replace: regexReplace,
  regex_escape: regexEscape,
  ternary,
  b64encode,
};

/** Filters that accept an undefined input by design. */
export const undefinedAwareFilters = new Set(['default', 'd', 'mandatory']);

/** Template functions (nunjucks globals). */
export const templateFunctions: Record<string, (...args: never[]) => unknown> = {
  gid,
  uid,
  secret,
  bundle_path: bundlePath,
};
