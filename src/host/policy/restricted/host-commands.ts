/** `host-commands`: the commands a plain systemd unit of the bundle runs on the host. */
import type { UnitLine } from '../../../bundle/unit-file.js';
import type { Finding } from './context.js';
import type { RestrictedRule, RuleDoc } from './rule.js';

/** The sections of a plain unit whose `Exec*=` lines systemd runs on the host. */
const hostCommandSections = ['Service', 'Socket'];

/**
 * A plain systemd unit runs on the host, outside any container: each kind of
 * `Exec*=` line it has (ExecStart, ExecStartPre, …, a socket's ExecStartPre)
 * is a host command, as root unless the unit says otherwise, and needs the
 * grant of that directive, as a Quadlet unit's host-side directive does.
 */
export function hostCommands(name: string, groups: ReadonlyMap<string, UnitLine[]>): Finding[] {
  const findings: Finding[] = [];
  for (const section of hostCommandSections) {
    for (const line of groups.get(section) ?? []) {
      if (!line.key.startsWith('Exec') || line.value === '') continue;
      findings.push({
        rule: 'host-commands',
        unit: name,
        source: line.source,
        written: `${line.key}=${line.value}`,
        need: { kind: 'service', value: line.key },
        detail: 'a plain unit runs this command on the host, outside any container',
      });
    }
  }
  return findings;
}

export const hostCommandsRule: RestrictedRule = {
  rules: ['host-commands'],
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const hostCommandsDocs: readonly RuleDoc[] = [
  {
    id: 'host-commands',
    podSecurity: '— (a pod spec has no host processes)',
    refuses:
      "a plain systemd unit of the bundle (`systemd/`): each kind of `Exec*=` line in its `[Service]` or `[Socket]` section (`ExecStart=`, `ExecStartPre=`, …, a socket's `ExecStartPre=`) is a command run on the host, outside any container, as root unless the unit says otherwise",
    allows: '`service` naming that directive',
  },
];
