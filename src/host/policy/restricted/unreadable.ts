/**
 * `unknown-flags` and `unjudged`: what the judge cannot read, or cannot tell
 * before the unit runs; every check reports these where it meets them, and
 * walk.ts where it reads keys and flags.
 */
import type { RestrictedRule, RuleDoc } from './rule.js';

export const unreadableRule: RestrictedRule = {
  rules: ['unknown-flags', 'unjudged'],
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const unreadableDocs: readonly RuleDoc[] = [
  {
    id: 'unknown-flags',
    podSecurity: '—',
    refuses:
      '`PodmanArgs=` flags podman 5.4 does not have, positional words (podman would take them for the image), `--`, a flag without its value, lines quadlet would split differently (an unknown escape makes it drop the line, an empty quoted word drops the rest), and Quadlet keys rick does not know',
    allows: '`privileged`',
  },
  {
    id: 'unjudged',
    podSecurity: '—',
    refuses:
      'what cannot be told before the unit runs (`$VAR` expansion, host-specific specifiers such as `%H`), `.kube` and `.build` units (rick does not judge a Kubernetes YAML or a build), lines quadlet cannot parse',
    allows: '`privileged`',
  },
];
