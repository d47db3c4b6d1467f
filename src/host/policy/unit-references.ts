/**
 * What a unit of a bundle makes systemd do to other units: start them with
 * it (`Requires=`, `Wants=`, `Upholds=`, `WantedBy=`…), stop them
 * (`Conflicts=`), start them on its failure or success, propagate reloads,
 * trigger them (a timer's or path unit's `Unit=`), give them other names
 * (`Alias=`), or take the whole host to another state (`reboot.target`,
 * `FailureAction=reboot`). A unit may do so only to the bundle's own units;
 * another's needs the host's grant (`UNITS=`), and the system-state
 * targets need the privileged profile. Ordering alone (`Before=`,
 * `After=`) starts nothing and stays free. Pure.
 */
import { needValueProblem } from '../../bundle/needs.js';
import type { UnitLine } from '../../bundle/unit-file.js';
import type { BundleNames } from './bundle-names.js';
import type { LineControl } from './socket-check.js';

/** Directives naming units, by section. */
const referenceKeys: Record<string, readonly string[]> = {
  Unit: [
    'Requires',
    'Requisite',
    'Wants',
    'BindsTo',
    'PartOf',
    'Upholds',
    'Conflicts',
    'OnFailure',
    'OnSuccess',
    'PropagatesReloadTo',
    'ReloadPropagatedFrom',
    'JoinsNamespaceOf',
  ],
  Install: ['WantedBy', 'RequiredBy', 'UpheldBy', 'Also', 'Alias'],
  Timer: ['Unit'],
  Path: ['Unit'],
};

/** Targets a unit may be wanted by without a grant: where services and timers usually start. */
const usualTargets = new Set([
  'multi-user.target',
  'default.target',
  'timers.target',
  'sockets.target',
]);

/**
 * References every unit with default dependencies already has, or that
 * start nothing of another service: free wherever they are written.
 */
const freeReferences: ReadonlySet<string> = new Set([
  'Conflicts=shutdown.target',
  'Wants=network-online.target',
  'Wants=network.target',
]);

/** Targets that change the state of the whole host. */
export const systemStateTargets: ReadonlySet<string> = new Set([
  'reboot.target',
  'poweroff.target',
  'halt.target',
  'kexec.target',
  'emergency.target',
  'rescue.target',
  'shutdown.target',
  'ctrl-alt-del.target',
  'soft-reboot.target',
  'exit.target',
  'final.target',
]);

/** `[Unit]` actions that reboot, power off or leave the host (systemd.unit(5)). */
const actionKeys = [
  'FailureAction',
  'SuccessAction',
  'StartLimitAction',
  'JobTimeoutAction',
  'JobRunningTimeoutAction',
];

export interface ReferenceContext {
  /** The unit's name, e.g. `app.timer` or `app.container`. */
  name: string;
  names: BundleNames;
  /** The value systemd uses (specifiers resolved), or undefined when it cannot be told. */
  expand: (value: string) => string | undefined;
}

/** Whether a unit name is the bundle's: one of its units, or an instance of its template. */
export function isOwnUnit(names: BundleNames, unit: string): boolean {
  if (names.units.has(unit)) return true;
  const at = unit.indexOf('@');
  const dot = unit.lastIndexOf('.');
  return at !== -1 && names.units.has(`${unit.slice(0, at + 1)}${unit.slice(dot)}`);
}

/** Judges the references of one unit's sections. */
export function judgeUnitReferences(
  ctx: ReferenceContext,
  groups: ReadonlyMap<string, readonly UnitLine[]>,
): LineControl[] {
  const out: LineControl[] = [];
  const at = (line: UnitLine, control: Omit<LineControl, 'line' | 'written'>) =>
    out.push({ line, written: `${line.key}=${line.value}`, ...control });
  for (const line of groups.get('Unit') ?? []) {
    if (!actionKeys.includes(line.key)) continue;
    if (['', 'none'].includes(line.value)) continue;
    at(line, {
      rule: 'unit-references',
      need: { kind: 'privileged' },
      detail: `${line.key}=${line.value} acts on the whole host`,
    });
  }
  for (const [section, keys] of Object.entries(referenceKeys)) {
    for (const line of groups.get(section) ?? []) {
      if (!keys.includes(line.key) || line.value === '') continue;
      const value = ctx.expand(line.value);
      if (value === undefined) {
        at(line, {
          rule: 'unit-references',
          need: { kind: 'privileged' },
          detail: 'the units it names cannot be told before the unit runs',
        });
        continue;
      }
      for (const unit of value.split(/\s+/).filter(Boolean)) {
        if (isOwnUnit(ctx.names, unit)) continue;
        if (freeReferences.has(`${line.key}=${unit}`)) continue;
        if (line.key === 'WantedBy' && usualTargets.has(unit)) continue;
        if (systemStateTargets.has(unit)) {
          at(line, {
            rule: 'unit-references',
            need: { kind: 'privileged' },
            detail: `${unit} changes the state of the whole host`,
          });
          continue;
        }
        if (needValueProblem('units', unit)) {
          at(line, {
            rule: 'unit-references',
            need: { kind: 'privileged' },
            detail: `${JSON.stringify(unit)} is not a unit name rick can judge`,
          });
          continue;
        }
        at(line, {
          rule: 'unit-references',
          need: { kind: 'units', value: unit },
          detail: `${line.key}= names ${unit}, which is not one of ${ctx.names.bundle}'s units`,
        });
      }
    }
  }
  const type = ctx.name.slice(ctx.name.lastIndexOf('.') + 1);
  const trigger = type === 'timer' ? 'Timer' : type === 'path' ? 'Path' : undefined;
  if (trigger && !(groups.get(trigger) ?? []).some((l) => l.key === 'Unit' && l.value !== '')) {
    const service = `${ctx.name.slice(0, ctx.name.lastIndexOf('.'))}.service`;
    const anchor = (groups.get(trigger) ?? [])[0] ?? [...groups.values()].flat()[0];
    if (anchor && !isOwnUnit(ctx.names, service)) {
      out.push({
        line: anchor,
        written: `(no Unit=) ${service}`,
        rule: 'unit-references',
        need: { kind: 'units', value: service },
        detail: `without Unit= the ${type} unit triggers ${service}, which is not one of ${ctx.names.bundle}'s units`,
      });
    }
  }
  return out;
}
