/** `service-directives`: a Quadlet unit's `[Service]` directives that act on the host. */
import { push, type UnitContext } from './context.js';
import type { RestrictedRule, RuleDoc } from './rule.js';

/** [Service] directives that only tune how systemd runs and restarts podman. */
const serviceAllowed = new Set([
  'Restart',
  'RestartSec',
  'RestartSteps',
  'RestartMaxDelaySec',
  'RestartMode',
  'RestartPreventExitStatus',
  'RestartForceExitStatus',
  'SuccessExitStatus',
  'TimeoutSec',
  'TimeoutStartSec',
  'TimeoutStopSec',
  'TimeoutAbortSec',
  'TimeoutStartFailureMode',
  'TimeoutStopFailureMode',
  'RuntimeMaxSec',
  'RuntimeRandomizedExtraSec',
  'WatchdogSec',
  'Type',
  'RemainAfterExit',
  'KillMode',
  'KillSignal',
  'RestartKillSignal',
  'FinalKillSignal',
  'SendSIGKILL',
  'SendSIGHUP',
  'OOMPolicy',
  'Slice',
  'CPUWeight',
  'StartupCPUWeight',
  'CPUQuota',
  'CPUQuotaPeriodSec',
  'AllowedCPUs',
  'AllowedMemoryNodes',
  'MemoryMin',
  'MemoryLow',
  'MemoryHigh',
  'MemoryMax',
  'MemorySwapMax',
  'MemoryZSwapMax',
  'TasksMax',
  'IOWeight',
  'StartupIOWeight',
  'ManagedOOMSwap',
  'ManagedOOMMemoryPressure',
  'ManagedOOMMemoryPressureLimit',
  'ManagedOOMPreference',
  'SyslogIdentifier',
  'SyslogFacility',
  'SyslogLevel',
  'SyslogLevelPrefix',
  'LogLevelMax',
  'LogRateLimitIntervalSec',
  'LogRateLimitBurst',
]);

/** Judges the `[Service]` section of a Quadlet unit, whatever its kind. */
export function serviceSection(ctx: UnitContext): void {
  for (const line of ctx.unit.groups.get('Service') ?? []) {
    if (serviceAllowed.has(line.key)) continue;
    push(
      ctx,
      line,
      `${line.key}=${line.value}`,
      'service-directives',
      { kind: 'service', value: line.key },
      line.key.startsWith('Exec')
        ? 'runs a command on the host, as root, outside the container'
        : 'acts on the host outside the container',
    );
  }
}

export const serviceDirectivesRule: RestrictedRule = {
  rules: ['service-directives'],
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const serviceDirectivesDocs: readonly RuleDoc[] = [
  {
    id: 'service-directives',
    podSecurity: '— (a pod spec has no host-side hooks)',
    refuses:
      'any `[Service]` directive of a Quadlet unit beyond those that only tune how systemd runs and restarts podman (`Restart*`, `Timeout*`, `Type`, `KillMode`, resource limits such as `MemoryMax`, `Syslog*`…): `ExecStartPre=` and every `Exec*=` run on the host as root; `Environment=` changes podman itself',
    allows: '`service`',
  },
];
