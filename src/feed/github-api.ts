/**
 * What GitHub's REST API says besides a body, read the way GitHub documents
 * and sends it (modelled in test/helpers/feed-server.ts on recorded
 * exchanges): the pagination `Link` header, and why a request was refused.
 *
 * - Primary rate limit: 403 or 429 with `x-ratelimit-remaining: 0`; no
 *   request succeeds before `x-ratelimit-reset` (UTC epoch seconds).
 *   Anonymous requests share 60 per hour per IP address, conditional ones
 *   answered 304 included; with a token, 5,000 per hour, and a 304 is free.
 * - Secondary rate limit: 403 or 429 with `retry-after` (seconds).
 * - Anything else: GitHub's own `message` from the JSON body.
 *
 * Pure; the update tick reaches it through update-deferred.ts, off the
 * no-op path.
 */
import { RickError } from '../errors.js';

/** The `rel="next"` target of a Link header, or undefined (RFC 8288, as GitHub writes it). */
export function nextPageUrl(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!match) continue;
    const rel = /;\s*rel\s*=\s*"?([^";]*)"?/i.exec(match[2] ?? '')?.[1] ?? '';
    if (rel.split(/\s+/).includes('next')) return match[1];
  }
  return undefined;
}

// A remote server's text goes to the journal: one line, no terminal controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const controlCharacters = /[\u0000-\u001f\u007f-\u009f]+/g;

/** GitHub's `message` from an error body, made safe for one log line. */
function githubMessage(body: Buffer): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const message = (value as { message?: unknown } | null)?.message;
  if (typeof message !== 'string') return undefined;
  const clean = message.replace(controlCharacters, ' ').trim();
  return clean.length > 300 ? `${clean.slice(0, 300)}…` : clean || undefined;
}

export interface RefusedAnswer {
  status: number;
  headers: Record<string, string | undefined>;
  body: Buffer;
}

export interface ExplainContext {
  /** Whether GITHUB_TOKEN was sent with the request. */
  token: boolean;
  /** What was asked, for the message: `release feed acme/releases`, `demo-1.2.0.tgz`. */
  what: string;
}

const RETRY = 'nothing was changed; the next timer tick tries again';

/** A FEED_ERROR saying why GitHub (or a server of its shape) did not answer 2xx. */
export function explainRefusal(answer: RefusedAnswer, ctx: ExplainContext): RickError {
  const { status, headers } = answer;
  const said = githubMessage(answer.body);
  const head = `${ctx.what} answered HTTP ${status}`;
  if ((status === 403 || status === 429) && headers['x-ratelimit-remaining'] === '0') {
    const reset = Number(headers['x-ratelimit-reset']);
    const until = Number.isFinite(reset)
      ? ` until ${new Date(reset * 1000).toISOString().replace('.000Z', 'Z')}`
      : '';
    const limit = headers['x-ratelimit-limit'];
    return new RickError(
      'FEED_ERROR',
      `${head}: GitHub's rate limit${limit ? ` of ${limit} requests per hour` : ''} is used up${until}`,
      {
        hint: ctx.token
          ? `${RETRY} after the reset`
          : 'without a token every host behind this IP address shares 60 requests per hour, conditional ones included: set GITHUB_TOKEN in /etc/rick/update.env',
      },
    );
  }
  const retryAfter = headers['retry-after'];
  if ((status === 403 || status === 429) && retryAfter !== undefined) {
    return new RickError(
      'FEED_ERROR',
      `${head}: GitHub's secondary rate limit, retry after ${retryAfter} s${said ? ` (${said})` : ''}`,
      { hint: `${RETRY}; many hosts asking at once? the timer spreads them over an hour` },
    );
  }
  let hint = RETRY;
  if (status === 401) {
    hint = ctx.token
      ? 'GitHub refuses GITHUB_TOKEN: renew it in /etc/rick/update.env'
      : 'the feed wants credentials: set GITHUB_TOKEN in /etc/rick/update.env';
  } else if (status === 404) {
    hint = ctx.token
      ? 'check FEED in rick.conf, and that GITHUB_TOKEN may read the repository'
      : 'check FEED in rick.conf; a private repository needs GITHUB_TOKEN in /etc/rick/update.env';
  }
  return new RickError('FEED_ERROR', said ? `${head}: ${said}` : head, { hint });
}
