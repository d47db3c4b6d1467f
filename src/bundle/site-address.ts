/**
 * The addresses of Caddy site blocks, read and normalized as Caddy 2.6 reads
 * them, so that two spellings of one address are seen as one claim: Caddy
 * takes `https://gitea.localhost`, `gitea.localhost` and `GITEA.localhost:443`
 * for different addresses, merges them into one route and lets the site that
 * sorts first serve the whole domain. Pure.
 *
 * Normal form: `scheme://host:port[/path]`, the host in lower case (a
 * trailing dot dropped), the scheme from the port when it is left out (80:
 * http, else https), the port from the scheme (http: 80, https: 443). An
 * empty host or `*` is a catch-all (`http://`, `:80`, `*`): it serves every
 * name nothing else claims on its port. A path after the host takes part of
 * a domain over (`shop.example.org/checkout*`).
 */

export interface SiteAddress {
  /** As written in the site block. */
  written: string;
  /** The normal form, e.g. `https://gitea.localhost:443`. */
  address: string;
  scheme: 'http' | 'https';
  /** Lower case; '' for a catch-all. */
  host: string;
  port: number;
  /** '' or the path matcher, e.g. `/user/login*`. */
  path: string;
  /** `http://`, `:80`, `*`: every name on that port. */
  catchAll: boolean;
}

/** One site block header of a site file: its addresses and where it stands. */
export interface SiteBlock {
  line: number;
  addresses: string[];
}

/** What a site file may not hold, whatever it is granted. */
export interface SiteTextProblem {
  line: number;
  written: string;
  problem: string;
}

interface Token {
  text: string;
  line: number;
  /** Whether the token ends its line. */
  last: boolean;
  /** A quoted word is never a brace. */
  quoted: boolean;
}

/** Caddyfile tokens: words, quoted words and backquoted words; `#` starts a comment. */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line: Token[] = [];
    let i = 0;
    while (i < raw.length) {
      const c = raw[i] as string;
      if (c === ' ' || c === '\t' || c === '\r') {
        i++;
        continue;
      }
      if (c === '#') break;
      let word = '';
      const quoted = c === '"' || c === '`';
      if (quoted) {
        let j = i + 1;
        while (j < raw.length && raw[j] !== c) {
          if (c === '"' && raw[j] === '\\') j++;
          j++;
        }
        word = raw.slice(i + 1, j);
        i = j + 1;
      } else {
        let j = i;
        while (j < raw.length && !/[\s]/.test(raw[j] as string)) j++;
        word = raw.slice(i, j);
        i = j;
      }
      line.push({ text: word, line: index + 1, last: false, quoted });
    }
    if (line.length) (line[line.length - 1] as Token).last = true;
    tokens.push(...line);
  });
  return tokens;
}

/**
 * The site blocks of a site file: the words at the top level before each `{`
 * (an address list may go on over lines ending with a comma). Snippets
 * (`(name) {`) and the global options block (`{` alone) are not sites.
 */
export function siteBlocks(text: string): SiteBlock[] {
  const blocks: SiteBlock[] = [];
  let depth = 0;
  let pending: Token[] = [];
  for (const token of tokenize(text)) {
    if (depth > 0) {
      if (token.quoted) continue;
      if (token.text === '{') depth++;
      else if (token.text === '}') depth--;
      continue;
    }
    if (token.text === '{' && !token.quoted) {
      const words = pending.map((t) => t.text.replace(/,$/, '')).filter(Boolean);
      if (words.length && !/^&?\(.*\)$/.test(words[0] as string)) {
        blocks.push({ line: pending[0]?.line ?? token.line, addresses: words });
      }
      pending = [];
      depth++;
      continue;
    }
    pending.push(token);
    if (token.last && !token.text.endsWith(',')) {
      // A top-level line without a block: `import`, or a file of one site
      // without braces, whose directives follow its address line.
      if (pending[0]?.text !== 'import' && blocks.length === 0 && pending.length > 0) {
        const words = pending.map((t) => t.text.replace(/,$/, '')).filter(Boolean);
        blocks.push({ line: pending[0]?.line ?? token.line, addresses: words });
        // Everything after is the site's body.
        depth = Number.POSITIVE_INFINITY;
      }
      pending = [];
    }
  }
  return blocks;
}

/** Normalizes one address as Caddy reads it; undefined with a reason when it cannot be read. */
export function normalizeSiteAddress(written: string): SiteAddress | { problem: string } {
  let rest = written;
  let scheme: 'http' | 'https' | undefined;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest);
  if (m) {
    const s = (m[1] as string).toLowerCase();
    if (s !== 'http' && s !== 'https') return { problem: `scheme ${s} is not http or https` };
    scheme = s;
    rest = rest.slice(m[0].length);
  }
  let path = '';
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    path = rest.slice(slash);
    rest = rest.slice(0, slash);
  }
  let host = rest;
  let port: number | undefined;
  const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(rest);
  if (!hp) return { problem: 'is not HOST[:PORT]' };
  host = hp[1] as string;
  if (hp[2] !== undefined && hp[2] !== '') {
    port = Number(hp[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      return { problem: 'has no valid port' };
  }
  host = host.toLowerCase().replace(/\.$/, '');
  if (host.includes('{') || host.includes('$')) {
    return { problem: 'holds a placeholder: a site address must be written out' };
  }
  if (scheme === undefined) scheme = port === 80 ? 'http' : 'https';
  if (port === undefined) port = scheme === 'http' ? 80 : 443;
  const catchAll = host === '' || host === '*';
  const shownHost = catchAll ? '' : host;
  return {
    written,
    address: `${scheme}://${shownHost}:${port}${path}`,
    scheme,
    host: shownHost,
    port,
    path,
    catchAll,
  };
}

/**
 * What a bundle's site may not hold: `import` (it reaches files outside the
 * bundle, such as /etc/rick/secrets/*, and makes the site whatever they
 * say) and `{$ENV}` placeholders (Caddy fills them in from the environment
 * of whoever runs it, so the site would be the installer's, not the bundle's).
 */
export function siteTextProblems(text: string): SiteTextProblem[] {
  const problems: SiteTextProblem[] = [];
  for (const token of tokenize(text)) {
    if (token.text === 'import') {
      problems.push({
        line: token.line,
        written: 'import',
        problem: "imports files from outside the bundle into the site (write the site's text out)",
      });
    }
    const env = /\{\$[^}]*\}/.exec(token.text);
    if (env) {
      problems.push({
        line: token.line,
        written: env[0],
        problem:
          'is an environment placeholder: Caddy would fill in the environment of the process that reads the site (use a bundle variable)',
      });
    }
  }
  return problems;
}

/** A directive's arguments, at any depth: `root * /srv/www` gives ['*', '/srv/www']. */
export function directiveArguments(text: string, name: string): { line: number; args: string[] }[] {
  const out: { line: number; args: string[] }[] = [];
  const tokens = tokenize(text);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as Token;
    const previous = tokens[i - 1];
    const first = previous === undefined || previous.last || previous.text === '{';
    if (!first || token.text !== name) continue;
    const args: string[] = [];
    let j = i;
    while (!(tokens[j] as Token).last) {
      j++;
      const word = (tokens[j] as Token).text;
      if (word === '{') break;
      args.push(word);
    }
    out.push({ line: token.line, args });
  }
  return out;
}

/** Every word of a site that starts with `prefix`, e.g. `unix/` upstreams, with its line. */
export function wordsStartingWith(text: string, prefix: string): { line: number; word: string }[] {
  return tokenize(text)
    .filter((t) => t.text.startsWith(prefix))
    .map((t) => ({ line: t.line, word: t.text }));
}
