/**
 * `host-namespaces` and `shared-namespaces`: sharing a namespace of the
 * host, or of a container or pod that is not the bundle's own.
 */
import type { UnitLine } from '../../../bundle/unit-file.js';
import { lookupLast } from '../../../bundle/unit-file.js';
import { joinedContainer, joinedPod } from '../controls.js';
import { push, pushControl, type UnitContext } from './context.js';
import type { FlagCheck, RestrictedRule, RuleDoc } from './rule.js';

function namespaceUse(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  namespace: string,
  value: string,
): void {
  for (const part of value.split(',')) {
    const mode = part.split(':')[0] ?? '';
    if (mode === 'host' || mode === 'ns') {
      push(
        ctx,
        line,
        written,
        'host-namespaces',
        { kind: 'namespaces', value: namespace },
        mode === 'ns' ? `joins the namespace at ${part.slice(3)}` : undefined,
      );
    }
  }
}

/** `--pid/--ipc/--uts/--cgroupns`: the host's, or another container's. */
const shared =
  (namespace: string): FlagCheck =>
  ({ ctx, line, written, name, value }) => {
    namespaceUse(ctx, line, written, namespace, value);
    pushControl(ctx, line, written, joinedContainer(ctx.names, name, value, false));
  };

export const namespacesRule: RestrictedRule = {
  rules: ['host-namespaces', 'shared-namespaces'],
  flags: {
    network: shared('network'),
    pid: shared('pid'),
    ipc: shared('ipc'),
    uts: shared('uts'),
    cgroupns: shared('cgroup'),
    userns: ({ ctx, line, written, value, state }) => {
      namespaceUse(ctx, line, written, 'user', value);
      pushControl(ctx, line, written, joinedContainer(ctx.names, 'user', value, false));
      // Each container then runs as its own range of host ids: no User= is needed.
      if (value.startsWith('auto')) state.usernsAuto = true;
    },
    pod: ({ ctx, line, written, value }) =>
      pushControl(ctx, line, written, joinedPod(ctx.names, value)),
  },
  keyChecks: {
    pod: {
      keys: ['Pod'],
      check: (ctx, { group }) => {
        const pod = lookupLast(ctx.unit, group, 'Pod');
        if (pod && pod.value !== '')
          pushControl(ctx, pod, `Pod=${pod.value}`, joinedPod(ctx.names, pod.value));
      },
    },
    'network-driver': {
      keys: ['Driver'],
      check: (ctx, { group }) => {
        const driver = lookupLast(ctx.unit, group, 'Driver');
        if (driver && ['macvlan', 'ipvlan'].includes(driver.value)) {
          push(
            ctx,
            driver,
            `Driver=${driver.value}`,
            'host-namespaces',
            { kind: 'namespaces', value: 'network' },
            "attaches containers to the host's own interfaces",
          );
        }
      },
    },
  },
  lineChecks: {
    // quadlet's own form, which it turns into container:<that unit's container>.
    'quadlet-network-container': {
      keys: ['Network'],
      check: (ctx, line) => {
        if (line.value.endsWith('.container'))
          pushControl(
            ctx,
            line,
            `Network=${line.value}`,
            joinedContainer(ctx.names, 'network', line.value, true),
          );
      },
    },
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const namespacesDocs: readonly RuleDoc[] = [
  {
    id: 'host-namespaces',
    podSecurity: 'Host Namespaces (Baseline)',
    refuses:
      "`Network=host`, `--network host`, `--pid/--ipc/--uts/--userns/--cgroupns host`, `UserNS=host`, any `ns:PATH`; a `.network` unit with the `macvlan` or `ipvlan` driver (the host's own interfaces)",
    allows: '`namespaces`',
  },
  {
    id: 'shared-namespaces',
    podSecurity: 'Host Namespaces (Baseline), read for a host of many services',
    refuses:
      "joining a container or pod that is not the bundle's own: `Network=container:NAME` (and quadlet's `Network=NAME.container`), `--network`/`--net`/`--pid`/`--ipc`/`--uts`/`--userns=container:NAME`, `Pod=NAME.pod`, `--pod NAME`. The bundle's own are the containers, pods and unit files its `.container` and `.pod` units make (`ContainerName=`/`PodName=`, or quadlet's `systemd-<unit>`)",
    allows: '`privileged`',
  },
];
