/** `capabilities`: capabilities beyond podman's default set. */

import type { UnitLine } from '../../../bundle/unit-file.js';
import { push, type UnitContext } from './context.js';
import type { RestrictedRule, RuleDoc } from './rule.js';

/** podman's default capabilities (containers.conf): adding one of these adds nothing. */
export const defaultCapabilities: ReadonlySet<string> = new Set([
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);

function capabilityUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  const name = value.toUpperCase().replace(/^CAP_/, '');
  if (defaultCapabilities.has(name)) return;
  push(ctx, line, written, 'capabilities', { kind: 'capabilities', value: name });
}

export const capabilitiesRule: RestrictedRule = {
  rules: ['capabilities'],
  flags: {
    'cap-add': ({ ctx, line, written, value }) => capabilityUse(ctx, line, written, value),
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const capabilitiesDocs: readonly RuleDoc[] = [
  {
    id: 'capabilities',
    podSecurity: 'Capabilities (Baseline; Restricted)',
    refuses:
      "`AddCapability=`/`--cap-add` beyond podman's default set (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT), and `ALL`",
    allows: '`capabilities`',
  },
];
