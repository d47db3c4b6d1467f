/** `secrets`: a podman secret, which is always another service's or the host's. */
import { secretUse } from '../controls.js';
import { pushControl } from './context.js';
import type { RestrictedRule, RuleDoc } from './rule.js';

export const secretsRule: RestrictedRule = {
  rules: ['secrets'],
  flags: {
    secret: ({ ctx, line, written, value }) => pushControl(ctx, line, written, secretUse(value)),
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const secretsDocs: readonly RuleDoc[] = [
  {
    id: 'secrets',
    podSecurity: "— (a pod reads only its namespace's Secrets)",
    refuses:
      "`Secret=NAME`, `--secret NAME` (or `source=NAME`): every podman secret is another service's or the host's",
    allows: '`secrets` naming it',
  },
];
