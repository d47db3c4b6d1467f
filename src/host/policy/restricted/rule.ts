/**
 * What a rule module of `restricted` registers, in the manner of Kubernetes'
 * pod-security-admission checks (one small module per control, each
 * registering its id and a pure function): the rules it judges, each with
 * its docs/policy.md row (rule-docs.ts), and the podman flags and Quadlet keys it reads,
 * each with its check. src/host/policy/restricted/registry.ts lists the
 * modules; the kind table (kinds.ts) says which keys and flags each Quadlet
 * kind has. A check reads only the unit and the value it is given, and
 * reports into the unit's findings.
 */
import type { UnitLine } from '../../../bundle/unit-file.js';
import type { FlagState, RuleId, UnitContext } from './context.js';
import type { FinalCheckName, KeyCheckName, LineCheckName } from './kinds.js';

/**
 * One row of docs/policy.md's table of the rules (written by `npm run docs`
 * through rule-docs.ts). Kept apart from the checks, so that the installer,
 * which bundles the judge, does not carry the table's text.
 */
export interface RuleDoc {
  id: RuleId;
  /** The Pod Security Standards control it corresponds to, and its level. */
  podSecurity: string;
  /** What `restricted` refuses, in Markdown. */
  refuses: string;
  /** The need that allows it. */
  allows: string;
}

/** One value of a podman flag, as a flag check reads it. */
export interface FlagUse {
  ctx: UnitContext;
  line: UnitLine;
  /** The key or flag as written, for the finding. */
  written: string;
  /** The flag's long name (`--net` is `network`). */
  name: string;
  /** As written: placeholders and specifiers still in. */
  raw: string;
  /** As systemd hands it to podman: specifiers resolved. */
  value: string;
  state: FlagState;
}

export type FlagCheck = (use: FlagUse) => void;

/** What a key check reads beyond the unit. */
export interface KeyUse {
  /** The kind's group, `Container`. */
  group: string;
  state: FlagState;
}

export interface KeyCheck {
  /** The Quadlet keys it reads. */
  keys: readonly string[];
  check: (ctx: UnitContext, use: KeyUse) => void;
}

export interface LineCheck {
  keys: readonly string[];
  check: (ctx: UnitContext, line: UnitLine) => void;
}

export interface RestrictedRule {
  /** The rules it judges: every finding it reports names one of them. */
  rules: readonly RuleId[];
  /** The podman flags it reads, by long name: a Quadlet key mapped to one is read as it. */
  flags?: Readonly<Record<string, FlagCheck>>;
  /** The key checks the kind table names that it holds. */
  keyChecks?: Readonly<Partial<Record<KeyCheckName, KeyCheck>>>;
  lineChecks?: Readonly<Partial<Record<LineCheckName, LineCheck>>>;
  finalChecks?: Readonly<Partial<Record<FinalCheckName, KeyCheck>>>;
}
