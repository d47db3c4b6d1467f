/**
 * How rick asks a GitHub feed, for its releases list (update-tick.ts, on
 * every tick) and for a release's files (github-source.ts): its headers, and
 * the token it may send where.
 */
import { isLoopback } from './client.js';

/** The most pages of the releases list one tick reads (100 releases each). */
export const FEED_MAX_PAGES = 10;
const USER_AGENT = 'rick-install';

/**
 * GITHUB_TOKEN as credentials for the feed's own origin, and for no other:
 * not an asset URL elsewhere, not where a redirect leads. A token travels
 * only over TLS (or to this very host).
 */
export function feedCredentials(
  feedUrl: string,
  env: NodeJS.ProcessEnv,
): { authorization: string; origin: string } | undefined {
  const token = env.GITHUB_TOKEN;
  if (!token) return undefined;
  const url = new URL(feedUrl);
  if (url.protocol !== 'https:' && !isLoopback(url)) return undefined;
  return { authorization: `Bearer ${token}`, origin: url.origin };
}

export function headersFor(url: string, accept: string): Record<string, string> {
  const headers: Record<string, string> = { 'user-agent': USER_AGENT, accept };
  if (new URL(url).hostname === 'api.github.com') headers['x-github-api-version'] = '2022-11-28';
  return headers;
}
