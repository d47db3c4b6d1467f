/**
 * `volumes`: another bundle's named volume. Mounts are read by host-paths.ts,
 * which asks controls.ts's namedVolume() of every named source.
 */
import { lookupLast } from '../../../bundle/unit-file.js';
import { volumeName } from '../controls.js';
import { pushControl } from './context.js';
import type { RestrictedRule, RuleDoc } from './rule.js';

export const volumesRule: RestrictedRule = {
  rules: ['volumes'],
  keyChecks: {
    'volume-name': {
      keys: ['VolumeName'],
      check: (ctx, { group }) => {
        const named = lookupLast(ctx.unit, group, 'VolumeName');
        if (named && named.value !== '')
          pushControl(
            ctx,
            named,
            `VolumeName=${named.value}`,
            volumeName(ctx.input.bundle, ctx.unit.name, named.value),
          );
      },
    },
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const volumesDocs: readonly RuleDoc[] = [
  {
    id: 'volumes',
    podSecurity: '— (a PVC is bound to one namespace)',
    refuses:
      "mounting a named volume that is not the bundle's own: its own are those its `.volume` units make and those named `<bundle>` or `<bundle>-…` (podman makes them on first use); a `.volume` unit of another bundle (`Volume=x.volume:…`); a `.volume` unit whose `VolumeName=` is another's (quadlet reuses an existing volume)",
    allows: '`volumes` naming it',
  },
];
