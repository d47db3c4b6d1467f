/** `selinux`, `apparmor`, `seccomp`, `proc-mount`: turning a confinement of the container off. */
import type { UnitLine } from '../../../bundle/unit-file.js';
import { push, refuse, type UnitContext } from './context.js';
import type { RestrictedRule, RuleDoc } from './rule.js';

/** SELinux types the Pod Security Standards allow. */
export const allowedSelinuxTypes: ReadonlySet<string> = new Set([
  'container_t',
  'container_init_t',
  'container_kvm_t',
  'container_engine_t',
]);

/** `--security-opt` values (also SecurityLabel*=, SeccompProfile=, Unmask=). */
function securityOptUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  const m = /^([a-z-]+)[=:]?(.*)$/.exec(value);
  const key = m?.[1] ?? '';
  const arg = m?.[2] ?? '';
  switch (key) {
    case 'label': {
      const [what = '', rest = ''] = arg.split(':');
      if (what === 'disable' || what === 'nested' || what === 'user' || what === 'role') {
        push(ctx, line, written, 'selinux', { kind: 'unconfined', value: 'selinux' });
      } else if (what === 'type' && !allowedSelinuxTypes.has(rest)) {
        push(
          ctx,
          line,
          written,
          'selinux',
          { kind: 'unconfined', value: 'selinux' },
          `type ${rest} is not a container type`,
        );
      } else if (!['type', 'level', 'filetype'].includes(what)) {
        refuse(ctx, line, written, 'unjudged', `label option ${what} is not known`);
      }
      return;
    }
    case 'seccomp':
      if (arg === 'unconfined')
        push(ctx, line, written, 'seccomp', { kind: 'unconfined', value: 'seccomp' });
      return;
    case 'apparmor':
      if (arg === 'unconfined')
        push(ctx, line, written, 'apparmor', { kind: 'unconfined', value: 'apparmor' });
      return;
    case 'unmask':
      push(ctx, line, written, 'proc-mount', { kind: 'unconfined', value: 'proc' });
      return;
    case 'systempaths':
      if (arg === 'unconfined')
        push(ctx, line, written, 'proc-mount', { kind: 'unconfined', value: 'proc' });
      return;
    case 'mask':
    case 'no-new-privileges':
    case 'proc-opts':
      return;
    default:
      refuse(ctx, line, written, 'unjudged', `security option ${JSON.stringify(key)} is not known`);
  }
}

export const confinementRule: RestrictedRule = {
  rules: ['selinux', 'apparmor', 'seccomp', 'proc-mount'],
  flags: {
    'security-opt': ({ ctx, line, written, value }) => securityOptUse(ctx, line, written, value),
    'seccomp-policy': ({ ctx, line, written, value }) => {
      if (value === 'image') {
        push(
          ctx,
          line,
          written,
          'seccomp',
          { kind: 'unconfined', value: 'seccomp' },
          "takes the seccomp profile from the image's annotations",
        );
      }
    },
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const confinementDocs: readonly RuleDoc[] = [
  {
    id: 'selinux',
    podSecurity: 'SELinux (Baseline)',
    refuses:
      '`SecurityLabelDisable=`, `label=disable`, `label=nested`, a label `user:` or `role:`, a type other than `container_t`, `container_init_t`, `container_kvm_t`, `container_engine_t`',
    allows: '`unconfined: selinux`',
  },
  {
    id: 'apparmor',
    podSecurity: 'AppArmor (Baseline)',
    refuses: '`apparmor=unconfined`',
    allows: '`unconfined: apparmor`',
  },
  {
    id: 'seccomp',
    podSecurity: 'Seccomp (Baseline; Restricted)',
    refuses:
      '`SeccompProfile=unconfined`, `seccomp=unconfined`, `--seccomp-policy=image` (a profile from the image). A profile file on the host is allowed, as `Localhost` profiles are',
    allows: '`unconfined: seccomp`',
  },
  {
    id: 'proc-mount',
    podSecurity: '/proc Mount Type (Baseline)',
    refuses: '`Unmask=`, `unmask=`, `systempaths=unconfined`',
    allows: '`unconfined: proc`',
  },
];
