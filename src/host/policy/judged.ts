/**
 * One policy judgment per install. The install judges the bundle before the
 * lock, where a refusal leaves no trace at all; under the lock it checks only
 * that what the judgment read from the host is still what it read (the grant
 * file byte for byte, by the digest taken when it was read, and the accounts
 * it looked up), instead of judging again. The judgment is a pure function
 * of the bundle, the grant and those facts (judge.ts), so equal inputs give
 * the same verdict. Reads only; changes nothing.
 */
import { RickError } from '../../errors.js';
import { hostAccountFacts, type PolicyCheckInput } from './check.js';
import { readGrant } from './grant.js';
import { type HostAccountFacts, judgeBundle, type PolicyReport } from './judge.js';

/** A verdict and what it was reached on. */
export interface PolicyJudgment {
  report: PolicyReport;
  /** The account facts the verdict used. */
  facts: HostAccountFacts;
}

function readGrantFor(input: PolicyCheckInput) {
  return readGrant(input.root, input.manifest.name, {
    ...(input.requireOwner === undefined ? {} : { requireOwner: input.requireOwner }),
  });
}

/** Reads the grant and the account facts, and judges the bundle on them. */
export async function judgePolicy(input: PolicyCheckInput): Promise<PolicyJudgment> {
  const grant = await readGrantFor(input);
  const facts = await hostAccountFacts(input.manifest, input.files, input.accounts, input.live);
  return { report: judgeBundle(input.manifest, input.files, grant, facts), facts };
}

const factNames: ReadonlyArray<readonly [keyof HostAccountFacts, string]> = [
  ['ownUsers', "user the bundle's own"],
  ['ownGroups', "group the bundle's own"],
  ['rootUsers', 'user with uid 0'],
  ['rootGroups', 'group with gid 0'],
];

/** How two sets of account facts differ, one phrase a name; empty when equal. */
export function factChanges(judged: HostAccountFacts, now: HostAccountFacts): string[] {
  const changes: string[] = [];
  for (const [key, what] of factNames) {
    for (const name of [...new Set([...judged[key], ...now[key]])].sort()) {
      const was = judged[key].has(name);
      if (was !== now[key].has(name)) changes.push(`${name} ${was ? 'was' : 'is now'} a ${what}`);
    }
  }
  return changes;
}

/**
 * Under the lock: the grant file must be byte for byte the one judged and
 * the accounts as they were; then the verdict stands. Otherwise the host
 * changed between the two points, and the install refuses with the file or
 * the accounts named, having changed nothing: run again, it judges anew.
 */
export async function confirmJudgment(
  judged: PolicyJudgment,
  input: PolicyCheckInput,
): Promise<PolicyReport> {
  const before = judged.report.grant;
  // Read as the judgment read it: the ownership checks of the file and its
  // directories apply again.
  const now = await readGrantFor(input);
  if (now.exists !== before.exists || now.digest !== before.digest) {
    const what = !now.exists
      ? 'was removed'
      : !before.exists
        ? 'was created'
        : `changed (sha256 ${before.digest} when judged, ${now.digest} now)`;
    throw new RickError(
      'CONFIG_INVALID',
      `${now.file} ${what} after ${judged.report.bundle} ${judged.report.version} was judged against it, before the install took the lock`,
      {
        hint: 'nothing was changed; run the install again: it judges the grant as it is then',
      },
    );
  }
  const facts = await hostAccountFacts(input.manifest, input.files, input.accounts, input.live);
  const changes = factChanges(judged.facts, facts);
  if (changes.length) {
    throw new RickError(
      'FACT_MISSING',
      `the accounts ${judged.report.bundle} ${judged.report.version} was judged on changed before the install took the lock (or in the recovery of an interrupted run under it): ${changes.join('; ')}`,
      {
        hint: 'nothing was changed; run the install again: it judges the accounts as they are then',
      },
    );
  }
  return judged.report;
}
