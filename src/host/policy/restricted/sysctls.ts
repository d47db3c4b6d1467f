/** `sysctls`: sysctls beyond the Pod Security Standards' safe set. */
import type { UnitLine } from '../../../bundle/unit-file.js';
import { push, refuse, type UnitContext } from './context.js';
import type { RestrictedRule, RuleDoc } from './rule.js';

/** The Pod Security Standards' "safe" sysctls (namespaced, isolated from other pods). */
export const safeSysctls: ReadonlySet<string> = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
]);

function sysctlUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  const name = value.split('=')[0] ?? '';
  if (safeSysctls.has(name)) return;
  if (!/^[a-z0-9_]+(\.[A-Za-z0-9_*-]+)+$/.test(name)) {
    refuse(ctx, line, written, 'sysctls', `${JSON.stringify(name)} is not a sysctl name`);
    return;
  }
  push(ctx, line, written, 'sysctls', { kind: 'sysctls', value: name });
}

export const sysctlsRule: RestrictedRule = {
  rules: ['sysctls'],
  flags: {
    sysctl: ({ ctx, line, written, value }) => sysctlUse(ctx, line, written, value),
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const sysctlsDocs: readonly RuleDoc[] = [
  {
    id: 'sysctls',
    podSecurity: 'Sysctls (Baseline)',
    refuses:
      'sysctls beyond the safe set: `kernel.shm_rmid_forced`, `net.ipv4.ip_local_port_range`, `net.ipv4.ip_unprivileged_port_start`, `net.ipv4.tcp_syncookies`, `net.ipv4.ping_group_range`',
    allows: '`sysctls`',
  },
];
