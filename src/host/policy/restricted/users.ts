/** `run-as-non-root` and `host-users`: which host user a container runs as. */
import type { UnitLine } from '../../../bundle/unit-file.js';
import { lookupLast } from '../../../bundle/unit-file.js';
import { idMapUse, idUse } from './accounts.js';
import { push, type UnitContext } from './context.js';
import type { RestrictedRule, RuleDoc } from './rule.js';

/** `--user USER[:GROUP]`; returns whether it may be root. */
function userUse(ctx: UnitContext, line: UnitLine, written: string, value: string): boolean {
  // A placeholder holds colons of its own: split after it.
  const skip = value.startsWith('@@rick:') ? value.indexOf('@@', 2) + 2 : 0;
  const colon = skip > 1 ? value.indexOf(':', skip) : value.indexOf(':');
  const user = colon === -1 ? value : value.slice(0, colon);
  const group = colon === -1 ? undefined : value.slice(colon + 1);
  if (user === '') {
    push(ctx, line, written, 'run-as-non-root', { kind: 'users', value: 'root' });
    return true;
  }
  const root = idUse(ctx, line, written, 'users', user) === 'root';
  if (group !== undefined && group !== '') idUse(ctx, line, written, 'groups', group);
  return root;
}

export const usersRule: RestrictedRule = {
  rules: ['run-as-non-root', 'host-users'],
  flags: {
    // podman keeps the last --user: judged once every flag is read.
    user: ({ line, written, raw, state }) => {
      state.user = { value: raw, line, written };
    },
    uidmap: ({ ctx, line, written, value }) => idMapUse(ctx, line, written, value, 'users'),
  },
  keyChecks: {
    user: {
      keys: ['User', 'Group'],
      check: (ctx, { group, state }) => {
        const user = lookupLast(ctx.unit, group, 'User');
        const grp = lookupLast(ctx.unit, group, 'Group');
        if (user && user.value !== '') {
          state.user = {
            value: grp && grp.value !== '' ? `${user.value}:${grp.value}` : user.value,
            line: user,
            written: `User=${user.value}${grp && grp.value !== '' ? ` Group=${grp.value}` : ''}`,
          };
        }
      },
    },
    'remap-users': {
      keys: ['RemapUsers'],
      check: (ctx, { group, state }) => {
        if (lookupLast(ctx.unit, group, 'RemapUsers')?.value === 'auto') state.usernsAuto = true;
      },
    },
  },
  finalChecks: {
    'run-as-non-root': {
      keys: ['User', 'Group', 'UserNS', 'RemapUsers'],
      check: (ctx, { group, state }) => {
        if (state.user) {
          userUse(ctx, state.user.line, state.user.written, state.user.value);
        } else if (!state.usernsAuto) {
          const anchor = (ctx.unit.groups.get(group) ?? [])[0] ?? {
            key: '',
            value: '',
            source: `${ctx.unit.name}:1`,
          };
          push(
            ctx,
            anchor,
            '(no User=)',
            'run-as-non-root',
            { kind: 'users', value: 'root' },
            "without User= the container runs as the image's user, root unless the image says otherwise",
          );
        }
      },
    },
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const usersDocs: readonly RuleDoc[] = [
  {
    id: 'run-as-non-root',
    podSecurity: 'Running as Non-root; Running as Non-root user (Restricted)',
    refuses:
      "a container without `User=` (the image's user, root unless it says otherwise) unless `UserNS=auto`; `User=0`, `root`, `%u`; a user name looked up in the image (it could be root); `uid()` of an account that is uid 0 on the host; a `--uidmap` holding host id 0",
    allows: '`users: root`',
  },
  {
    id: 'host-users',
    podSecurity:
      "— (rick: runAsUser is free in Kubernetes, but a host user can reach that user's sockets and files)",
    refuses:
      'running as a host user the bundle does not own: `uid("name")` of an existing account, or a literal UID',
    allows: '`users`',
  },
];
