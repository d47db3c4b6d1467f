/** `host-groups`: the host groups a container joins. */
import type { UnitLine } from '../../../bundle/unit-file.js';
import { idMapUse, idUse } from './accounts.js';
import { refuse, type UnitContext } from './context.js';
import type { RestrictedRule, RuleDoc } from './rule.js';

function groupAddUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  if (value === 'keep-groups') {
    refuse(
      ctx,
      line,
      written,
      'host-groups',
      "keep-groups hands the container every group of podman's own process",
    );
    return;
  }
  idUse(ctx, line, written, 'groups', value);
}

export const groupsRule: RestrictedRule = {
  rules: ['host-groups'],
  flags: {
    'group-add': ({ ctx, line, written, raw }) => groupAddUse(ctx, line, written, raw),
    gidmap: ({ ctx, line, written, value }) => idMapUse(ctx, line, written, value, 'groups'),
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const groupsDocs: readonly RuleDoc[] = [
  {
    id: 'host-groups',
    podSecurity:
      'Non-root groups (Restricted, optional); rick goes further: host groups open host sockets',
    refuses:
      'joining a host group the bundle does not own: `gid("name")` (root-equivalent groups are refused outright by the archive reader), a literal GID, GID 0; `keep-groups` and group names looked up in the image are refused (need `privileged`)',
    allows: '`groups`',
  },
];
