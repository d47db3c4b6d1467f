/**
 * The walk over a Quadlet unit: the kind table (kinds.ts) says which keys
 * it has and which flag each maps to; every value is handed to the check
 * the registry holds for its flag or key. What cannot be read (unknown keys
 * and flags, environment expansions) is reported here.
 */
import { posix } from 'node:path';
import {
  type FlagSpec,
  type ParsedFlag,
  parsePodmanFlags,
  splitArgs,
  splitStrv,
} from '../../../bundle/podman-args.js';
import { lookupAll, lookupBoolean, lookupLast, type UnitLine } from '../../../bundle/unit-file.js';
import {
  cannotTell,
  expandValue,
  type FlagState,
  refuse,
  type UnitContext,
  unitDir,
} from './context.js';
import type { FlagKey, QuadletKind } from './kinds.js';
import { finalCheck, flagCheck, keyCheck, lineCheck } from './registry.js';

/** Judges one podman flag of the command quadlet runs (`podman run`, `podman pod create`…). */
function judgeFlag(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  flag: ParsedFlag,
  state: FlagState,
): void {
  const name = flag.name === 'net' ? 'network' : flag.name;
  // Every other known flag touches nothing of the host.
  const check = flagCheck(name);
  if (!check) return;
  for (const raw of flag.values) {
    const value = expandValue(raw, ctx.service);
    if (value === undefined) {
      cannotTell(ctx, line, written, `the value of --${name}`);
      continue;
    }
    check({ ctx, line, written, name, raw, value, state });
  }
}

function judgeFlags(
  ctx: UnitContext,
  line: UnitLine,
  key: string,
  table: Readonly<Record<string, FlagSpec>>,
  state: FlagState,
): void {
  const split = splitArgs(line.value);
  const written = `${key}=${line.value}`;
  for (const problem of split.problems) {
    refuse(ctx, line, written, 'unknown-flags', problem);
  }
  const words: string[] = [];
  for (const word of split.words) {
    if (word.includes('$') && !/^[^$]*(\$\$[^$]*)*$/.test(word)) {
      refuse(
        ctx,
        line,
        written,
        'unjudged',
        `${JSON.stringify(word)} is expanded from the environment when the unit starts`,
      );
      return;
    }
    words.push(word);
  }
  const parsed = parsePodmanFlags(words, table);
  for (const problem of parsed.problems) {
    refuse(ctx, line, written, 'unknown-flags', problem);
  }
  for (const flag of parsed.flags) judgeFlag(ctx, line, `${key}: ${flag.written}`, flag, state);
}

/** The flag a key maps to, as quadlet adds it. */
function asFlag(name: string, value: string, spec: FlagSpec | undefined): ParsedFlag {
  const values = spec?.type === 'slice' ? value.split(',') : [value];
  return { name, values, written: `--${name} ${value}` };
}

function unknownKeys(ctx: UnitContext, group: string, known: ReadonlySet<string>): void {
  for (const line of ctx.unit.groups.get(group) ?? []) {
    if (!known.has(line.key)) {
      refuse(
        ctx,
        line,
        `${line.key}=${line.value}`,
        'unknown-flags',
        `[${group}] ${line.key}= is not a key rick knows`,
      );
    }
  }
}

/** The lines of a key quadlet turns into a flag, each with the values of the flags it gives. */
function flagKeyValues(ctx: UnitContext, group: string, use: FlagKey): [UnitLine, string[]][] {
  const u = ctx.unit;
  if (use.when && lookupLast(u, group, use.when.key)?.value !== use.when.value) return [];
  let lines: UnitLine[];
  if (use.lines === 'all') lines = lookupAll(u, group, use.key);
  else if (use.lines === 'true') {
    lines = lookupBoolean(u, group, use.key) ? [lookupLast(u, group, use.key)!] : [];
  } else {
    const last = lookupLast(u, group, use.key);
    lines = last && (last.value !== '' || use.lines === 'last-even-empty') ? [last] : [];
  }
  return lines.map((line) => {
    const words =
      use.words === 'strv'
        ? splitStrv(line.value).words
        : use.words === 'args'
          ? splitArgs(line.value).words
          : [line.value];
    return [
      line,
      words.map((w) => {
        if (use.fixed !== undefined) return use.fixed;
        if (use.relative && !(w.startsWith('/') || w.startsWith('@@')))
          return posix.join(unitDir(ctx.input.bundle), w);
        return `${use.prefix ?? ''}${w}`;
      }),
    ];
  });
}

/** Judges a Quadlet unit of one kind: its keys, in the kind table's order, then its final checks. */
export function judgeKind(ctx: UnitContext, kind: QuadletKind): void {
  const group = kind.group;
  unknownKeys(ctx, group, kind.known);
  const state: FlagState = { usernsAuto: false };
  for (const use of kind.uses) {
    if ('podmanArgs' in use) {
      for (const line of lookupAll(ctx.unit, group, use.key))
        judgeFlags(ctx, line, use.key, kind.flags, state);
    } else if ('check' in use) {
      keyCheck(use.check)(ctx, { group, state });
    } else {
      for (const [line, values] of flagKeyValues(ctx, group, use)) {
        for (const value of values) {
          const flag = asFlag(use.flag, value, kind.flags[use.flag]);
          judgeFlag(ctx, line, `${use.key}=${line.value}`, flag, state);
        }
        if (use.afterFlag) lineCheck(use.afterFlag)(ctx, line);
      }
    }
  }
  for (const name of kind.final ?? []) finalCheck(name)(ctx, { group, state });
}
