/**
 * Is this host ready for the bundle? Everything the operator must provide
 * (groups and users the bundle uses, secrets, and what the host grants it)
 * judged in one pass, so that one run names every missing fact, secret and
 * grant, always in the same order: accounts, secrets, grant lines. `plan`,
 * `install` and `--grant` share it and refuse with the same message.
 *
 * When facts and grants are both missing the refusal is FACT_MISSING (exit
 * 5): the facts come first because `--grant` asks only once they are there,
 * and a grant is the last thing an operator adds.
 */
import type { Manifest } from '../../bundle/manifest.js';
import { bundleSysusers } from '../../bundle/sysusers.js';
import { RickError } from '../../errors.js';
import { formatMissing, grantAdvice, policyRefusal } from '../policy/check.js';
import type { PolicyReport } from '../policy/judge.js';
import type { Accounts } from './accounts.js';
import {
  type FactLookup,
  type FactValues,
  lookupFacts,
  missingFactsHint,
  missingRequiredAccounts,
} from './facts.js';

export interface ReadinessInput {
  manifest: Manifest;
  files: ReadonlyMap<string, Buffer>;
  accounts: Accounts;
  /** The secrets file read, or undefined when it does not exist. */
  secrets: ReadonlyMap<string, string> | undefined;
  /** Where the secrets were looked for, named in the message. */
  secretsPath: string;
  /** The bundle judged against this host's grant. */
  policy: PolicyReport;
  /** What an account systemd-sysusers has yet to create stands for. */
  pendingValue: string;
}

export interface Readiness {
  /** Groups and users the bundle uses but does not create, missing here. */
  required: string[];
  /** The placeholders' facts; an account the bundle creates counts as found. */
  lookup: FactLookup;
  policy: PolicyReport;
}

export async function readReadiness(input: ReadinessInput): Promise<Readiness> {
  const effects = bundleSysusers(input.manifest, input.files);
  const [required, lookup] = await Promise.all([
    missingRequiredAccounts(input.manifest, input.files, input.accounts),
    lookupFacts(input.manifest, input.accounts, input.secrets, {
      secretsPath: input.secretsPath,
      pending: { users: effects.users, groups: effects.groups },
      pendingValue: input.pendingValue,
    }),
  ]);
  return { required, lookup, policy: input.policy };
}

/** True when a group, user or secret is missing (the grant aside). */
export function factsMissing(readiness: Readiness): boolean {
  return (
    readiness.required.length > 0 ||
    readiness.lookup.accounts.length > 0 ||
    readiness.lookup.secrets !== undefined
  );
}

/**
 * The one refusal naming everything missing, or undefined when nothing is.
 * `withPolicy` false (`plan`, which shows its plan before refusing an
 * ungranted bundle): a grant alone missing is not refused here; with facts
 * missing too, the grant lines are named all the same.
 */
export function readinessRefusal(
  readiness: Readiness,
  options: { withPolicy: boolean },
): RickError | undefined {
  const { required, lookup, policy } = readiness;
  if (!factsMissing(readiness)) {
    return options.withPolicy && policy.missing.length > 0 ? policyRefusal(policy) : undefined;
  }
  const accounts = lookup.accounts.filter((a) => !required.includes(a));
  const facts = [
    ...(required.length
      ? [`${required.join(', ')} (the bundle uses them but does not create them)`]
      : []),
    ...accounts,
    ...(lookup.secrets ? [lookup.secrets] : []),
  ];
  const ungranted = policy.missing.length > 0;
  const steps = [
    'nothing was changed',
    missingFactsHint({ accounts: [...required, ...accounts], secrets: lookup.secrets }),
  ];
  if (ungranted) steps.push(`then ${grantAdvice(policy)}`);
  return new RickError(
    'FACT_MISSING',
    `missing host facts: ${facts.join(', ')}${ungranted ? `; not granted by ${policy.grant.file}: ${formatMissing(policy)}` : ''}`,
    { hint: `${steps.join('; ')}${ungranted ? '' : '; then run it again'}` },
  );
}

/** The facts the placeholders resolve to, once readinessRefusal found nothing missing. */
export function readyValues(readiness: Readiness): FactValues {
  return readiness.lookup.values;
}
