/**
 * What every check of `restricted` shares: the rule ids, a finding, the
 * unit being judged (where its findings go), and how a value reads once
 * systemd and quadlet have resolved it. Pure.
 */
import { posix } from 'node:path';
import { type Need, pathProblem } from '../../../bundle/needs.js';
import type { UnitFile, UnitLine } from '../../../bundle/unit-file.js';
import type { BundleNames } from '../bundle-names.js';
import { type Control, controlRules } from '../controls.js';

/** The rules of `restricted`, as docs/policy.md names them, in the order its table lists them. */
export const restrictedRules = [
  'privileged',
  'capabilities',
  'host-namespaces',
  'host-paths',
  'sensitive-paths',
  'devices',
  'host-ports',
  'selinux',
  'apparmor',
  'seccomp',
  'proc-mount',
  'sysctls',
  'run-as-non-root',
  'host-users',
  'host-groups',
  'service-directives',
  'host-commands',
  ...controlRules,
  'unknown-flags',
  'site-addresses',
  'site-paths',
  'unjudged',
] as const;
export type RuleId = (typeof restrictedRules)[number];

export interface Finding {
  rule: RuleId;
  /** The unit file, e.g. `authentik-server.container`. */
  unit: string;
  /** `<file>:<line>` of the key. */
  source: string;
  /** The key or flag as written, e.g. `Volume=/srv:/srv` or `PodmanArgs: --privileged`. */
  written: string;
  need: Need;
  /** Why, when the need alone does not say it. */
  detail?: string;
}

export interface JudgeInput {
  /** The bundle's Quadlet files, relative to its quadlet/ directory, placeholders still in. */
  files: ReadonlyMap<string, string>;
  bundle: string;
  /** Users and groups the bundle itself creates (its sysusers.d `u` and `g` lines). */
  ownUsers: ReadonlySet<string>;
  ownGroups: ReadonlySet<string>;
  /** The bundle's plain systemd units (systemd/), by unit name: they run on the host itself. */
  plainUnits?: ReadonlyMap<string, string>;
}

export interface Judgement {
  findings: Finding[];
  /** uid()/gid() names the units run as or join: a host checks what they resolve to. */
  accounts: { users: Set<string>; groups: Set<string> };
}

/** A value that is one placeholder of a host fact, `@@rick:uid:NAME@@`. */
export const placeholderOnly = /^@@rick:(gid|uid|path):([^@]+)@@$/;

/** Where a unit judged here lives on a host, for quadlet's relative paths. */
export function unitDir(bundle: string): string {
  return `/etc/containers/systemd/rick/${bundle}`;
}

/** The Quadlet unit being judged, and where its findings and the accounts it names go. */
export interface UnitContext {
  unit: UnitFile;
  input: JudgeInput;
  findings: Finding[];
  accounts: Judgement['accounts'];
  /** The generated service's name without `.service`, for %N. */
  service: string;
  /** The containers, pods, volumes and units the bundle makes. */
  names: BundleNames;
}

/** What the flags of one unit leave for the checks that run once all are read. */
export interface FlagState {
  /** The last --user value seen (what podman keeps), with its line. */
  user?: { value: string; line: UnitLine; written: string };
  usernsAuto: boolean;
}

export function push(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  rule: RuleId,
  need: Need,
  detail?: string,
): void {
  ctx.findings.push({
    rule,
    unit: ctx.unit.name,
    source: line.source,
    written,
    need,
    ...(detail === undefined ? {} : { detail }),
  });
}

/** A use the profile refuses outright, or cannot judge: only the privileged profile allows it. */
export function refuse(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  rule: RuleId,
  detail: string,
): void {
  push(ctx, line, written, rule, { kind: 'privileged' }, detail);
}

export function pushControl(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  control: Control | undefined,
): void {
  if (control) push(ctx, line, written, control.rule, control.need, control.detail);
}

/**
 * The value systemd will hand podman: specifiers of a system unit resolved,
 * `$$` made `$`. Undefined when it cannot be told here (an environment
 * variable, a host-specific specifier).
 */
export function expandValue(value: string, service: string): string | undefined {
  const known: Record<string, string> = {
    '%': '%',
    t: '/run',
    S: '/var/lib',
    C: '/var/cache',
    L: '/var/log',
    E: '/etc',
    T: '/tmp',
    V: '/var/tmp',
    D: '/usr/share',
    h: '/root',
    s: '/bin/sh',
    u: 'root',
    U: '0',
    g: 'root',
    G: '0',
    n: `${service}.service`,
    N: service,
    p: service.split('@')[0] ?? service,
    P: service.split('@')[0] ?? service,
    j: (service.split('@')[0] ?? service).split('-').at(-1) ?? '',
    J: (service.split('@')[0] ?? service).split('-').at(-1) ?? '',
    i: service.includes('@') ? service.slice(service.indexOf('@') + 1) : '',
    I: service.includes('@') ? service.slice(service.indexOf('@') + 1) : '',
  };
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '%') {
      const next = value[i + 1];
      const v = next === undefined ? undefined : known[next];
      if (v === undefined) return undefined;
      out += v;
      i++;
    } else if (c === '$') {
      if (value[i + 1] !== '$') return undefined;
      out += '$';
      i++;
    } else {
      out += c;
    }
  }
  return out;
}

export function cannotTell(ctx: UnitContext, line: UnitLine, written: string, what: string): void {
  refuse(
    ctx,
    line,
    written,
    'unjudged',
    `${what} cannot be told before the unit runs (an environment variable or a host-specific specifier)`,
  );
}

/** A host path as quadlet resolves it (relative to the unit's directory), or why it cannot be judged. */
export function hostPath(ctx: UnitContext, source: string): string | undefined {
  const resolved = source.startsWith('/')
    ? posix.normalize(source)
    : posix.join(unitDir(ctx.input.bundle), source);
  const trimmed = resolved.length > 1 ? resolved.replace(/\/+$/, '') : resolved;
  return pathProblem(trimmed) === undefined ? trimmed : undefined;
}
