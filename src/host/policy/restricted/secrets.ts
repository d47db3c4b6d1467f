/** `secrets`: a podman secret, which is always another service's or the host's. */
import { secretUse } from '../controls.js';
import { pushControl } from './context.js';
import type { RestrictedRule } from './rule.js';

export const secretsRule: RestrictedRule = {
  docs: [
    {
      id: 'secrets',
      podSecurity: "\u2014 (a pod reads only its namespace's Secrets)",
      refuses:
        "`Secret=NAME`, `--secret NAME` (or `source=NAME`): every podman secret is another service's or the host's",
      allows: '`secrets` naming it',
    },
  ],
  flags: {
    secret: ({ ctx, line, written, value }) => pushControl(ctx, line, written, secretUse(value)),
  },
};
