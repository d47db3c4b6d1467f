/**
 * The policy step of an install (and of `plan`): read the bundle's grant,
 * learn what the host knows of the accounts the bundle names, judge (once
 * per install: judged.ts), and refuse with POLICY_REFUSED, listing exactly
 * what is new, when the grant does not cover everything. Reads only;
 * changes nothing.
 */
import type { Manifest } from '../../bundle/manifest.js';
import { formatNeed } from '../../bundle/needs.js';
import { RickError } from '../../errors.js';
import type { StoredGeneration } from '../generations.js';
import type { Accounts } from '../intake/accounts.js';
import { grantLines } from './grant.js';
import {
  createdAccounts,
  describeNeed,
  type HostAccountFacts,
  type PolicyReport,
  sysusersEntries,
} from './judge.js';

/**
 * A user or group the bundle creates is its own only when it does not exist
 * on this host yet, or when the bundle's live release created it too: an
 * existing account (an infrastructure group, another service's user) is
 * never made the bundle's own by naming it in a sysusers.d `u` or `g` line.
 */
export async function hostAccountFacts(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
  accounts: Accounts,
  live: StoredGeneration | undefined,
): Promise<HostAccountFacts> {
  const created = createdAccounts(sysusersEntries(manifest, files));
  const previous = live?.bundles.get(manifest.name);
  const before = previous
    ? createdAccounts(sysusersEntries(previous.manifest, previous.sources))
    : { users: new Set<string>(), groups: new Set<string>() };
  const ownUsers = new Set<string>();
  const ownGroups = new Set<string>();
  const rootUsers = new Set<string>();
  const rootGroups = new Set<string>();
  await Promise.all([
    ...[...created.users].map(async (name) => {
      if (before.users.has(name) || !(await accounts.user(name))) ownUsers.add(name);
    }),
    ...[...created.groups].map(async (name) => {
      if (before.groups.has(name) || !(await accounts.group(name))) ownGroups.add(name);
    }),
    ...manifest.facts.map(async (fact) => {
      if (fact.kind === 'uid' && (await accounts.user(fact.name))?.uid === 0)
        rootUsers.add(fact.name);
      if (fact.kind === 'gid' && (await accounts.group(fact.name))?.gid === 0)
        rootGroups.add(fact.name);
    }),
  ]);
  return { ownUsers, ownGroups, rootUsers, rootGroups };
}

export interface PolicyCheckInput {
  manifest: Manifest;
  files: ReadonlyMap<string, Buffer>;
  /** The host tree's root (`/`, or `--root DIR`). */
  root: string;
  accounts: Accounts;
  live: StoredGeneration | undefined;
  requireOwner?: number;
}

/**
 * How to grant what is missing: the lines to add, one a line and unindented,
 * exactly as the grant file takes them (pasted, they parse), and when a few
 * lines cover many uses, why. `declined`: the operator has just answered no
 * to `--grant`, which is then not offered again.
 */
export function grantAdvice(report: PolicyReport, options: { declined?: boolean } = {}): string {
  const lines = grantLines(report.missing);
  const advice = [
    `to allow it, add ${lines.length === 1 ? 'this line' : `these ${lines.length} lines`} to ${report.grant.file}:`,
    ...lines,
  ];
  if (report.missing.length > lines.length) {
    advice.push(
      `(${lines.length === 1 ? 'this line covers' : `these ${lines.length} lines cover`} all ${report.missing.length} needs named: one line per kind lists all its values, and a granted directory covers the paths below it)`,
    );
  }
  if (!options.declined) {
    advice.push('or run `rick-install --grant` on the bundle, which shows the same and asks');
  }
  return advice.join('\n');
}

/** The refusal of a bundle that needs more than its grant allows. */
export function policyRefusal(
  report: PolicyReport,
  options: { declined?: boolean } = {},
): RickError {
  const what = report.missing.map((n) => describeNeed(report, n)).join('; ');
  return new RickError(
    'POLICY_REFUSED',
    `${report.bundle} ${report.version} needs what ${report.grant.file} does not grant: ${what}`,
    { hint: `nothing was changed; ${grantAdvice(report, options)}` },
  );
}

/** One line for logs: `path /srv/x:rw, group docker`. */
export function formatMissing(report: PolicyReport): string {
  return report.missing.map(formatNeed).join(', ');
}

/** The policy section of `plan`: needs, the grant, and what is new. */
export function formatPolicyReport(report: PolicyReport): string {
  const lines = [
    `policy: ${report.grant.exists ? `${report.grant.file} (profile ${report.grant.profile})` : `no ${report.grant.file}: the restricted profile alone`}`,
  ];
  if (report.needs.length === 0) lines.push('  needs: nothing beyond the restricted profile');
  for (const need of report.needs) {
    const granted = !report.missing.includes(need);
    lines.push(`  ${granted ? 'granted' : 'NEW    '}  ${describeNeed(report, need)}`);
  }
  if (report.missing.length) {
    lines.push(`  escalation: ${formatMissing(report)}`);
    lines.push(`  to grant it, add to ${report.grant.file}:`);
    for (const line of grantLines(report.missing)) lines.push(`    ${line}`);
  }
  return `${lines.join('\n')}\n`;
}
