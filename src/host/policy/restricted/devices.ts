/** `devices`: host devices handed to a container, or mounted by a `.volume` unit. */
import { posix } from 'node:path';
import { pathProblem } from '../../../bundle/needs.js';
import type { UnitLine } from '../../../bundle/unit-file.js';
import { lookupLast } from '../../../bundle/unit-file.js';
import { cannotTell, expandValue, push, refuse, type UnitContext } from './context.js';
import { bindSource } from './host-paths.js';
import type { RestrictedRule, RuleDoc } from './rule.js';

function deviceUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  const source = value.replace(/^-/, '').split(':')[0] ?? '';
  const expanded = expandValue(source, ctx.service);
  if (expanded === undefined) {
    cannotTell(ctx, line, written, 'the device');
    return;
  }
  const path = posix.normalize(expanded);
  if (!path.startsWith('/dev/') || pathProblem(path)) {
    refuse(ctx, line, written, 'devices', `${expanded} is not a device under /dev`);
    return;
  }
  push(ctx, line, written, 'devices', { kind: 'devices', value: path });
}

export const devicesRule: RestrictedRule = {
  rules: ['devices'],
  flags: {
    device: ({ ctx, line, written, raw }) => deviceUse(ctx, line, written, raw),
  },
  keyChecks: {
    // A `.volume` unit's Device= is a device, or with `bind` a host path.
    'volume-device': {
      keys: ['Device', 'Type', 'Options'],
      check: (ctx, { group }) => {
        const u = ctx.unit;
        const device = lookupLast(u, group, 'Device');
        if (!device || device.value === '') return;
        const type = lookupLast(u, group, 'Type')?.value ?? '';
        const options = (lookupLast(u, group, 'Options')?.value ?? '').split(',');
        const bind = type === 'bind' || options.includes('bind') || options.includes('rbind');
        const written = `Device=${device.value}`;
        if (device.value.startsWith('/dev/') && !bind) {
          deviceUse(ctx, device, written, device.value);
        } else if (device.value.startsWith('/') || device.value.startsWith('.')) {
          bindSource(
            ctx,
            device,
            written,
            device.value,
            options.includes('ro') ? 'ro' : 'rw',
            'the volume device',
          );
        }
      },
    },
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const devicesDocs: readonly RuleDoc[] = [
  {
    id: 'devices',
    podSecurity: 'Privileged Containers / HostPath Volumes (Baseline)',
    refuses: '`AddDevice=`, `--device`, a `.volume` unit mounting a `/dev` device',
    allows: '`devices`',
  },
];
