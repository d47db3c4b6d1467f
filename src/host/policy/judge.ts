/**
 * Judging a bundle against a grant: its declared needs and what its units
 * use beyond `restricted` (src/host/policy/restricted.ts), each compared with
 * what the grant allows. Pure; the host adds what only it knows about its
 * accounts through `HostAccountFacts`.
 */
import { fileKindDirs, type Manifest } from '../../bundle/manifest.js';
import {
  covers,
  emptyNeeds,
  formatNeed,
  type Need,
  type Needs,
  needKey,
  needsFrom,
  needsList,
  uncovered,
} from '../../bundle/needs.js';
import { parseSysusers, type SysusersEntry, sysusersEffects } from '../../bundle/sysusers.js';
import type { Grant } from './grant.js';
import { type Finding, formatFinding, judgeUnits } from './restricted.js';
import { judgeSites } from './sites.js';

export interface PolicyReport {
  bundle: string;
  version: string;
  /** What the manifest declares (empty for a schemaVersion 1 manifest, which declares nothing). */
  declared: Needs;
  /** What the units use beyond the profile. */
  findings: Finding[];
  /** Everything the bundle needs: declared and used, each once. */
  needs: Need[];
  grant: Grant;
  /** What the grant does not allow, each once: empty when the bundle may be installed. */
  missing: Need[];
}

/** What the host knows about the accounts a bundle names (src/host/policy/host-facts.ts). */
export interface HostAccountFacts {
  /** Users and groups the bundle creates that are truly its own on this host. */
  ownUsers: ReadonlySet<string>;
  ownGroups: ReadonlySet<string>;
  /** uid()/gid() names that resolve to id 0 here. */
  rootUsers: ReadonlySet<string>;
  rootGroups: ReadonlySet<string>;
}

/** The bundle's Quadlet files relative to quadlet/, as text. */
export function quadletFiles(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
): Map<string, string> {
  const out = new Map<string, string>();
  const prefix = `${fileKindDirs.quadlet}/`;
  for (const f of manifest.files) {
    if (f.kind !== 'quadlet') continue;
    const data = files.get(f.path);
    if (data) out.set(f.path.slice(prefix.length), data.toString('utf8'));
  }
  return out;
}

/** The bundle's Caddy sites by bundle path (`caddy/x.caddy`), as text. */
export function siteFiles(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of manifest.files) {
    if (f.kind !== 'caddy') continue;
    const data = files.get(f.path);
    if (data) out.set(f.path, data.toString('utf8'));
  }
  return out;
}

/** The bundle's plain systemd units by unit name, as text. */
export function plainUnitFiles(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
): Map<string, string> {
  const out = new Map<string, string>();
  const prefix = `${fileKindDirs.systemd}/`;
  for (const f of manifest.files) {
    if (f.kind !== 'systemd') continue;
    const data = files.get(f.path);
    if (data) out.set(f.path.slice(prefix.length), data.toString('utf8'));
  }
  return out;
}

/** The sysusers.d entries of a bundle (already checked by the archive reader). */
export function sysusersEntries(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
): SysusersEntry[] {
  const entries: SysusersEntry[] = [];
  for (const f of manifest.files) {
    if (f.kind !== 'sysusers') continue;
    const data = files.get(f.path);
    if (data) entries.push(...parseSysusers(data.toString('utf8'), f.path));
  }
  return entries;
}

/** Users and groups a bundle's sysusers.d fragments create with `u` and `g` lines. */
export function createdAccounts(entries: readonly SysusersEntry[]): {
  users: Set<string>;
  groups: Set<string>;
} {
  const effects = sysusersEffects(entries);
  return { users: new Set(effects.users), groups: new Set(effects.groups) };
}

/** Judges a verified bundle against a grant. */
export function judgeBundle(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
  grant: Grant,
  facts: HostAccountFacts,
): PolicyReport {
  const judged = judgeUnits({
    files: quadletFiles(manifest, files),
    plainUnits: plainUnitFiles(manifest, files),
    bundle: manifest.name,
    ownUsers: facts.ownUsers,
    ownGroups: facts.ownGroups,
  });
  const findings = [...judged.findings, ...judgeSites(siteFiles(manifest, files))];
  for (const name of judged.accounts.users) {
    if (facts.rootUsers.has(name)) {
      findings.push({
        rule: 'run-as-non-root',
        unit: '(host)',
        source: '(host)',
        written: `uid("${name}")`,
        need: { kind: 'users', value: 'root' },
        detail: `user ${name} is uid 0 on this host`,
      });
    }
  }
  for (const name of judged.accounts.groups) {
    if (facts.rootGroups.has(name)) {
      findings.push({
        rule: 'host-groups',
        unit: '(host)',
        source: '(host)',
        written: `gid("${name}")`,
        need: { kind: 'groups', value: 'root' },
        detail: `group ${name} is gid 0 on this host`,
      });
    }
  }
  const declared = manifest.needs ?? emptyNeeds();
  const needs = dedupe([...needsList(declared), ...findings.map((f) => f.need)]);
  return {
    bundle: manifest.name,
    version: manifest.version,
    declared,
    findings,
    needs,
    grant,
    missing: uncovered(grant.needs, needs),
  };
}

function dedupe(list: readonly Need[]): Need[] {
  const seen = new Set<string>();
  return list.filter((n) => {
    const key = needKey(n);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Where each need comes from: the declaration, and the units that use it. */
export function describeNeed(
  report: Pick<PolicyReport, 'declared' | 'findings'>,
  need: Need,
): string {
  const key = needKey(need);
  const where = report.findings.filter((f) => needKey(f.need) === key).map(formatFinding);
  const declared = needsList(report.declared).some((n) => needKey(n) === key);
  const origin = [...(declared ? ['declared'] : []), ...where];
  return `${formatNeed(need)}${origin.length ? ` (${origin.join('; ')})` : ''}`;
}

/** Needs the declaration does not cover, for the builder: what the units use beyond bundle.yaml. */
export function undeclared(declared: Needs, findings: readonly Finding[]): Finding[] {
  return findings.filter((f) => !covers(declared, f.need));
}

/** The needs a report asks of a grant, as bundle.yaml or a manifest would list them. */
export function reportNeeds(report: PolicyReport): Needs {
  return needsFrom(report.needs);
}
