/**
 * The `restricted` profile: what a bundle's Quadlet units use from the host,
 * judged rule by rule, each rule beside the Pod Security Standards control
 * it corresponds to (docs/policy.md has the table). Pure; the builder and
 * the installer run the same judge over the same unit text (placeholders
 * still in), so a bundle the builder passed is judged the same way on every
 * host, and only the host adds what only it knows (src/host/policy/judge.ts).
 *
 * A finding is one use beyond the profile, with the need that would allow
 * it: a group, a path, a port… or `privileged` for what the profile refuses
 * outright (flags it does not know, values it cannot tell).
 *
 * The rules are small modules under restricted/, listed by its registry;
 * restricted/kinds.ts says which keys and flags each Quadlet kind has. This
 * module reads a bundle's units and hands each to them in turn.
 */
import {
  lookupLast,
  parseUnitFile,
  readQuadletUnits,
  type UnitFile,
  unitTypeOf,
} from '../../bundle/unit-file.js';
import { type BundleNames, bundleNames } from './bundle-names.js';
import {
  expandValue,
  type Finding,
  type JudgeInput,
  type Judgement,
  push,
  type UnitContext,
} from './restricted/context.js';
import { hostCommands } from './restricted/host-commands.js';
import { quadletKinds } from './restricted/kinds.js';
import { serviceSection } from './restricted/service-directives.js';
import { judgeKind } from './restricted/walk.js';
import { judgeSocket, type LineControl } from './socket-check.js';
import { judgeUnitReferences } from './unit-references.js';

export { defaultCapabilities } from './restricted/capabilities.js';
export { allowedSelinuxTypes } from './restricted/confinement.js';
export {
  expandValue,
  type Finding,
  type JudgeInput,
  type Judgement,
  type RuleId,
  restrictedRules,
} from './restricted/context.js';
export { publishedPort } from './restricted/ports.js';
export { isSensitivePath } from './restricted/sensitive-paths.js';
export { safeSysctls } from './restricted/sysctls.js';

/** The generated service's name without `.service`, as quadlet derives it. */
function serviceBase(unit: UnitFile): string {
  const type = unitTypeOf(unit.name)!;
  const group = type[0]!.toUpperCase() + type.slice(1);
  const named = lookupLast(unit, group, 'ServiceName');
  if (named && named.value !== '') return named.value;
  const base = unit.name.slice(0, unit.name.lastIndexOf('.'));
  return type === 'container' || type === 'kube' ? base : `${base}-${type}`;
}

/** Judges every unit of a bundle against `restricted`. */
export function judgeUnits(input: JudgeInput): Judgement {
  const { units, problems } = readQuadletUnits(input.files);
  const findings: Finding[] = [];
  const accounts = { users: new Set<string>(), groups: new Set<string>() };
  for (const problem of problems) {
    findings.push({
      rule: 'unjudged',
      unit: problem.source.split(':')[0] ?? '',
      source: problem.source,
      written: problem.message,
      need: { kind: 'privileged' },
      detail: 'quadlet cannot read this line',
    });
  }
  const names = bundleNames(input.bundle, units, (input.plainUnits ?? new Map()).keys());
  for (const unit of units) {
    const ctx: UnitContext = {
      unit,
      input,
      findings,
      accounts,
      service: serviceBase(unit),
      names,
    };
    serviceSection(ctx);
    for (const c of judgeUnitReferences(
      { name: unit.name, names, expand: (value) => expandValue(value, ctx.service) },
      unit.groups,
    ))
      push(ctx, c.line, c.written, c.rule, c.need, c.detail);
    const type = unitTypeOf(unit.name);
    switch (type) {
      case 'container':
      case 'pod':
      case 'volume':
      case 'network':
      case 'image':
        judgeKind(ctx, quadletKinds[type]);
        break;
      default: {
        const first = [...unit.groups.values()].flat()[0] ?? {
          key: '',
          value: '',
          source: `${unit.name}:1`,
        };
        push(
          ctx,
          first,
          unit.name,
          'unjudged',
          { kind: 'privileged' },
          'rick does not judge what a .kube or .build unit does on the host',
        );
      }
    }
  }
  for (const [name, text] of [...(input.plainUnits ?? new Map<string, string>())].sort()) {
    judgePlainUnit(name, text, findings, input, names);
  }
  return { findings, accounts };
}

/**
 * A plain systemd unit of the bundle: the units it names, a socket's
 * listeners, what systemd cannot read, and its host commands.
 */
function judgePlainUnit(
  name: string,
  text: string,
  findings: Finding[],
  input: JudgeInput,
  names: BundleNames,
): void {
  const { groups, problems } = parseUnitFile(text, name);
  const lineControls = (controls: readonly LineControl[]) => {
    for (const c of controls) {
      findings.push({
        rule: c.rule,
        unit: name,
        source: c.line.source,
        written: c.written,
        need: c.need,
        ...(c.detail === undefined ? {} : { detail: c.detail }),
      });
    }
  };
  const base = name.slice(0, name.lastIndexOf('.'));
  lineControls(
    judgeUnitReferences({ name, names, expand: (value) => expandValue(value, base) }, groups),
  );
  if (name.endsWith('.socket')) {
    lineControls(
      judgeSocket(
        {
          name,
          names,
          ownUsers: input.ownUsers,
          ownGroups: input.ownGroups,
          expand: (value) => expandValue(value, base),
        },
        groups.get('Socket') ?? [],
      ),
    );
  }
  for (const problem of problems) {
    findings.push({
      rule: 'unjudged',
      unit: name,
      source: problem.source,
      written: problem.message,
      need: { kind: 'privileged' },
      detail: 'systemd cannot read this line',
    });
  }
  findings.push(...hostCommands(name, groups));
}

/** `authentik-server.container:17 Volume=/srv:/srv: path /srv:rw (rule host-paths)`. */
export function formatFinding(f: Finding): string {
  return `${f.source} ${f.written}${f.detail ? ` (${f.detail})` : ''} [${f.rule}]`;
}
