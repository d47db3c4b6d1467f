/**
 * `site-addresses` and `site-paths`: what a bundle's Caddy sites take from
 * the host; judged by src/host/policy/sites.ts over the site files.
 */
import type { RestrictedRule, RuleDoc } from './rule.js';

export const sitesRule: RestrictedRule = {
  rules: ['site-addresses', 'site-paths'],
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const sitesDocs: readonly RuleDoc[] = [
  {
    id: 'site-addresses',
    podSecurity: "— (an Ingress host is one namespace's)",
    refuses:
      "a Caddy site whose address is a catch-all (`http://`, `:80`, `*`: every name no other site claims) or has a path (`shop.example.org/checkout*`: part of a domain). A site's plain host names are the bundle's own: which bundle, or the host's Caddyfile, holds each name is judged apart (`SITE_REJECTED`, [sites.md](sites.md))",
    allows: '`sites`',
  },
  {
    id: 'site-paths',
    podSecurity: 'HostPath Volumes (Baseline)',
    refuses:
      "a Caddy site's `root` with `file_server` (`DIR:ro`) and a `unix/PATH` upstream of `reverse_proxy` (`PATH:rw`): Caddy reads or connects to that host path",
    allows: '`paths`',
  },
];
