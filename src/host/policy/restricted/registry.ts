/**
 * The rules of `restricted`, one module each, and the one table that
 * drives them: which check reads each podman flag and each named key check
 * of the kind table (kinds.ts). A flag or a check is held by exactly one
 * module. docs/policy.md's rule table is written from the same modules
 * (rule-docs.ts).
 */
import { capabilitiesRule } from './capabilities.js';
import { confinementRule } from './confinement.js';
import { devicesRule } from './devices.js';
import { groupsRule } from './groups.js';
import { hostCommandsRule } from './host-commands.js';
import { hostPathsRule } from './host-paths.js';
import { imageSourcesRule } from './image-sources.js';
import type { FinalCheckName, KeyCheckName, LineCheckName } from './kinds.js';
import { namespacesRule } from './namespaces.js';
import { portsRule } from './ports.js';
import { privilegedRule } from './privileged.js';
import type { FlagCheck, KeyCheck, LineCheck, RestrictedRule } from './rule.js';
import { secretsRule } from './secrets.js';
import { sensitivePathsRule } from './sensitive-paths.js';
import { serviceDirectivesRule } from './service-directives.js';
import { sitesRule } from './sites.js';
import { socketsRule } from './sockets.js';
import { sysctlsRule } from './sysctls.js';
import { unitDependenciesRule } from './unit-dependencies.js';
import { unreadableRule } from './unreadable.js';
import { usersRule } from './users.js';
import { volumesRule } from './volumes.js';

export const restrictedRuleModules: readonly RestrictedRule[] = [
  privilegedRule,
  capabilitiesRule,
  namespacesRule,
  hostPathsRule,
  sensitivePathsRule,
  devicesRule,
  portsRule,
  confinementRule,
  sysctlsRule,
  usersRule,
  groupsRule,
  serviceDirectivesRule,
  hostCommandsRule,
  secretsRule,
  volumesRule,
  imageSourcesRule,
  socketsRule,
  unitDependenciesRule,
  unreadableRule,
  sitesRule,
];

/** One map of what the modules register under one field; a name two modules hold is a mistake. */
function collect<T>(
  field: (rule: RestrictedRule) => Readonly<Record<string, T | undefined>> | undefined,
): Map<string, T> {
  const out = new Map<string, T>();
  for (const rule of restrictedRuleModules) {
    for (const [name, check] of Object.entries(field(rule) ?? {})) {
      if (check === undefined) continue;
      if (out.has(name)) throw new Error(`two rules of restricted read ${name}`);
      out.set(name, check);
    }
  }
  return out;
}

const flagChecks = collect((r) => r.flags);
const keyChecks = collect<KeyCheck>((r) => r.keyChecks);
const lineChecks = collect<LineCheck>((r) => r.lineChecks);
const finalChecks = collect<KeyCheck>((r) => r.finalChecks);

/** The check of a podman flag, or undefined for a flag that touches nothing of the host. */
export function flagCheck(name: string): FlagCheck | undefined {
  return flagChecks.get(name);
}

function named<T>(checks: ReadonlyMap<string, T>, name: string): T {
  const check = checks.get(name);
  if (check === undefined) throw new Error(`no rule of restricted holds the check ${name}`);
  return check;
}

export function keyCheck(name: KeyCheckName): KeyCheck['check'] {
  return named(keyChecks, name).check;
}

export function lineCheck(name: LineCheckName): LineCheck['check'] {
  return named(lineChecks, name).check;
}

export function finalCheck(name: FinalCheckName): KeyCheck['check'] {
  return named(finalChecks, name).check;
}

/** Every flag some rule reads. */
export function judgedFlags(): string[] {
  return [...flagChecks.keys()];
}
