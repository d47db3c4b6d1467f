/**
 * `unit-references`: the dependencies and triggers a unit names; judged by
 * src/host/policy/unit-references.ts for Quadlet and plain units alike.
 */
import type { RestrictedRule, RuleDoc } from './rule.js';

export const unitDependenciesRule: RestrictedRule = {
  rules: ['unit-references'],
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const unitDependenciesDocs: readonly RuleDoc[] = [
  {
    id: 'unit-references',
    podSecurity: '— (a pod cannot start or stop other workloads)',
    refuses:
      "a dependency or trigger, in a Quadlet unit or a plain unit, naming a unit that is not the bundle's own (its units, the services quadlet makes of them, instances of its templates): `[Unit]` `Requires=`, `Requisite=`, `Wants=`, `BindsTo=`, `PartOf=`, `Upholds=`, `Conflicts=`, `OnFailure=`, `OnSuccess=`, `PropagatesReloadTo=`, `ReloadPropagatedFrom=`, `JoinsNamespaceOf=`; `[Install]` `WantedBy=`, `RequiredBy=`, `UpheldBy=`, `Also=`, `Alias=`; a `.timer`'s or `.path` unit's `Unit=`, or without it `<name>.service`. Free: `Before=`/`After=` (ordering starts nothing), `WantedBy=` of `multi-user.target`, `default.target`, `timers.target`, `sockets.target`, `Wants=network-online.target`/`network.target`, `Conflicts=shutdown.target` (every unit with default dependencies has it). The system-state targets (`reboot`, `poweroff`, `halt`, `kexec`, `emergency`, `rescue`, `shutdown`, `ctrl-alt-del`, `soft-reboot`, `exit`, `final`) and `FailureAction=`/`SuccessAction=`/`StartLimitAction=`/`JobTimeoutAction=`/`JobRunningTimeoutAction=` other than `none` need `privileged`",
    allows: '`units`; `privileged` for the system-state targets and actions',
  },
];
