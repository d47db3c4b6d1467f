/**
 * The builder's side of the policy: the rendered units may use nothing
 * beyond what bundle.yaml declares in `needs`, so that a template mistake or
 * a smuggled drop-in fails the build instead of reaching hosts; and with
 * `--policy FILE` (a host's grant file) the bundle is judged as that host
 * will judge it. Pure: the judge is the installer's own
 * (src/host/policy/restricted.ts), over the same unit text.
 */

import * as z from 'zod';
import { type DatabaseDeclaration, databaseNeed, databaseSchema } from '../bundle/databases.js';
import type { Manifest } from '../bundle/manifest.js';
import {
  canonicalNeeds,
  covers,
  formatNeed,
  isLoopback,
  type Need,
  type Needs,
  needsFrom,
  needsList,
  needsSchema,
  parsePortNeed,
} from '../bundle/needs.js';
import { parseSysusers, type SysusersEntry } from '../bundle/sysusers.js';
import { RickError } from '../errors.js';
import type { Grant } from '../host/policy/grant.js';
import {
  createdAccounts,
  describeNeed,
  judgeBundle,
  type PolicyReport,
} from '../host/policy/judge.js';
import { type Finding, formatFinding, judgeUnits } from '../host/policy/restricted.js';
import { judgeSites } from '../host/policy/sites.js';

export interface NeedsCheckInput {
  bundle: string;
  /** The rendered needs of bundle.yaml (strings still unchecked). */
  declared: Record<string, unknown> | undefined;
  /** Rendered Quadlet units and drop-ins, relative to quadlet/. */
  units: ReadonlyMap<string, string>;
  /** Rendered plain systemd units, by unit name. */
  plainUnits?: ReadonlyMap<string, string>;
  /** Rendered sysusers.d fragments, by template name. */
  sysusers: ReadonlyArray<{ name: string; content: string }>;
  /** Rendered Caddy sites, by bundle path (`caddy/x.caddy`). */
  sites?: ReadonlyMap<string, string>;
}

export interface NeedsCheck {
  needs: Needs;
  /** The declared databases (their needs are in `needs.databases`). */
  databases: DatabaseDeclaration[];
  findings: Finding[];
  /** What the units use that the declaration does not cover: the build fails on these. */
  undeclared: Finding[];
  /** Declared needs nothing in the units uses (worth a warning, not an error). */
  unused: string[];
}

/** The rendered `databases` of bundle.yaml's needs; throws DEFINITION_INVALID naming every problem. */
export function parseDeclaredDatabases(value: unknown): DatabaseDeclaration[] {
  const databases = (value as { databases?: unknown } | undefined)?.databases ?? [];
  const result = z.array(databaseSchema).safeParse(databases);
  if (!result.success) {
    throw new RickError(
      'DEFINITION_INVALID',
      `bundle.yaml needs: ${result.error.issues.map((i) => `databases.${i.path.join('.')}: ${i.message}`).join('; ')}`,
      { hint: 'docs/databases.md has the form of a database' },
    );
  }
  return result.data;
}

/** Validates the rendered declaration; throws DEFINITION_INVALID naming every problem. */
export function parseDeclaredNeeds(value: unknown): Needs {
  // Databases are records in bundle.yaml; the need each makes is `postgresql:<name>`.
  const databases = parseDeclaredDatabases(value);
  const result = needsSchema.safeParse({
    ...((value as Record<string, unknown> | undefined) ?? {}),
    databases: databases.map(databaseNeed),
  });
  if (!result.success) {
    throw new RickError(
      'DEFINITION_INVALID',
      `bundle.yaml needs: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      { hint: 'docs/policy.md lists the forms of each need' },
    );
  }
  // Loopback ports are within the profile: a declaration templated on a bind
  // address ("{{ bind_address }}:9000/tcp") records them only when they leave it.
  const needs = canonicalNeeds(result.data);
  needs.ports = needs.ports.filter((p) => !isLoopback(parsePortNeed(p)?.address ?? ''));
  return needs;
}

export function checkDeclaredNeeds(input: NeedsCheckInput): NeedsCheck {
  const needs = parseDeclaredNeeds(input.declared);
  const databases = parseDeclaredDatabases(input.declared);
  const entries: SysusersEntry[] = input.sysusers.flatMap((f) => parseSysusers(f.content, f.name));
  const own = createdAccounts(entries);
  const { findings } = judgeUnits({
    files: input.units,
    ...(input.plainUnits === undefined ? {} : { plainUnits: input.plainUnits }),
    bundle: input.bundle,
    ownUsers: own.users,
    ownGroups: own.groups,
  });
  findings.push(...judgeSites(input.sites ?? new Map()));
  const undeclared = findings.filter((f) => !covers(needs, f.need));
  // A database is used by the installer, not by a unit.
  const unused = needsList(needs)
    .filter((need) => need.kind !== 'databases')
    .filter((need) => !findings.some((f) => covers(needsFrom([need]), f.need)))
    .map(formatNeed);
  return { needs, databases, findings, undeclared, unused };
}

/** The refusal of units that use what bundle.yaml does not declare. */
export function undeclaredRefusal(check: NeedsCheck): RickError {
  return new RickError(
    'NEEDS_UNDECLARED',
    `the rendered units use what bundle.yaml does not declare: ${check.undeclared
      .map((f) => `${formatNeed(f.need)} (${formatFinding(f)})`)
      .join('; ')}`,
    {
      hint: `if the units truly need it, add to bundle.yaml (into its needs: if it has one):\n${needsYaml(
        check.undeclared.map((f) => f.need),
      )}or fix the template; docs/policy.md has the rules`,
    },
  );
}

/** The `needs:` block declaring `needs`, as bundle.yaml takes it, indented for a hint. */
export function needsYaml(needs: readonly Need[]): string {
  const byKind = new Map<string, string[]>();
  let privileged = false;
  for (const need of needs) {
    if (need.kind === 'privileged') {
      privileged = true;
      continue;
    }
    const values = byKind.get(need.kind) ?? [];
    if (!values.includes(need.value)) values.push(need.value);
    byKind.set(need.kind, values);
  }
  const lines = ['needs:'];
  if (privileged) lines.push('  privileged: true');
  for (const [kind, values] of byKind) {
    lines.push(`  ${kind}:`, ...values.map((v) => `    - ${JSON.stringify(v)}`));
  }
  return `${lines.map((l) => `    ${l}`).join('\n')}\n`;
}

/** Judges a built bundle as a host with `grant` will: what the grant would not allow. */
export function judgeAsHost(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
  grant: Grant,
  sysusers: readonly SysusersEntry[],
): PolicyReport {
  const own = createdAccounts(sysusers);
  return judgeBundle(manifest, files, grant, {
    ownUsers: own.users,
    ownGroups: own.groups,
    rootUsers: new Set(),
    rootGroups: new Set(),
  });
}

export function buildPolicyRefusal(report: PolicyReport, policyFile: string): RickError {
  return new RickError(
    'POLICY_REFUSED',
    `${report.bundle} ${report.version} needs what ${policyFile} does not grant: ${report.missing
      .map((n) => describeNeed(report, n))
      .join('; ')}`,
    {
      hint: 'hosts with this grant would hold this release until their operator grants it; nothing was written',
    },
  );
}
