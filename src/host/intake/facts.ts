/**
 * Host facts: the values a bundle's placeholders need that only this host
 * knows (GIDs, UIDs, secrets). Every missing fact is reported in one error so
 * that an operator fixes a host in one pass, not one fact per attempt.
 */
import type { Manifest } from '../../bundle/manifest.js';
import { placeholderKey } from '../../bundle/placeholders.js';
import { bundleSysusers, requiredExistingAccounts } from '../../bundle/sysusers.js';
import { RickError } from '../../errors.js';
import type { Accounts } from './accounts.js';

export interface ResolveFactsOptions {
  /** Where the secrets came from, named in the error (e.g. /etc/rick/secrets/authentik.env). */
  secretsPath?: string;
  /**
   * Accounts the bundle's sysusers.d fragments will create but that do not
   * exist yet (`rick-install plan` does not run systemd-sysusers). Their facts
   * resolve to `pendingValue` instead of being reported missing.
   */
  pending?: { users: ReadonlySet<string>; groups: ReadonlySet<string> };
  /** Value of a pending account's id; default `(allocated by systemd-sysusers)`. */
  pendingValue?: string;
}

/** Map from `kind:name` (e.g. `gid:postgres-clients`) to its value on this host. */
export type FactValues = Map<string, string>;

const kindWords = { gid: 'group', uid: 'user', secret: 'secret' } as const;

/** What a lookup of the manifest's facts found, and what it did not. */
export interface FactLookup {
  values: FactValues;
  /** Missing groups and users, `group NAME` / `user NAME`, in manifest order. */
  accounts: string[];
  /** Missing secrets, with where they were looked for, or undefined when none is missing. */
  secrets: string | undefined;
}

/**
 * Looks every fact the manifest declares up, and says which are missing.
 * `secrets` is undefined when the secrets file does not exist; that is fine
 * for a bundle that needs no secret.
 */
export async function lookupFacts(
  manifest: Manifest,
  accounts: Accounts,
  secrets: ReadonlyMap<string, string> | undefined,
  options: ResolveFactsOptions = {},
): Promise<FactLookup> {
  const values: FactValues = new Map();
  const missing: string[] = [];
  const missingSecrets: string[] = [];
  const pendingValue = options.pendingValue ?? '(allocated by systemd-sysusers)';
  const lookups = manifest.facts.map(async (fact) => {
    switch (fact.kind) {
      case 'gid': {
        const group = await accounts.group(fact.name);
        if (group) return { fact, value: String(group.gid) };
        if (options.pending?.groups.has(fact.name)) return { fact, value: pendingValue };
        return { fact, value: undefined };
      }
      case 'uid': {
        const user = await accounts.user(fact.name);
        if (user) return { fact, value: String(user.uid) };
        if (options.pending?.users.has(fact.name)) return { fact, value: pendingValue };
        return { fact, value: undefined };
      }
      case 'secret':
        return { fact, value: secrets?.get(fact.name) };
    }
  });
  for (const { fact, value } of await Promise.all(lookups)) {
    if (value !== undefined) values.set(placeholderKey(fact), value);
    else if (fact.kind === 'secret') missingSecrets.push(`secret ${fact.name}`);
    else missing.push(`${kindWords[fact.kind]} ${fact.name}`);
  }
  let missingSecretsText: string | undefined;
  if (missingSecrets.length) {
    const where = options.secretsPath
      ? ` (in ${options.secretsPath}${secrets === undefined ? ', which does not exist' : ''})`
      : secrets === undefined
        ? ' (no secrets file)'
        : '';
    missingSecretsText = `${missingSecrets.join(', ')}${where}`;
  }
  return { values, accounts: missing, secrets: missingSecretsText };
}

/** The hint of a FACT_MISSING: what to create and where. */
export function missingFactsHint(lookup: Pick<FactLookup, 'accounts' | 'secrets'>): string {
  const steps: string[] = [];
  if (lookup.accounts.length)
    steps.push('create the groups and users named (getent must find them)');
  if (lookup.secrets) steps.push('add the secrets (KEY=value, file root-owned, mode 0600)');
  return steps.join('; ');
}

/**
 * Resolves every fact the manifest declares. Throws one FACT_MISSING naming
 * every missing fact, e.g.
 * `missing host facts: group postgres-clients, secret authentik_secret_key (in /etc/rick/secrets/authentik.env)`.
 */
export async function resolveFacts(
  manifest: Manifest,
  accounts: Accounts,
  secrets: ReadonlyMap<string, string> | undefined,
  options: ResolveFactsOptions = {},
): Promise<FactValues> {
  const lookup = await lookupFacts(manifest, accounts, secrets, options);
  const missing = [...lookup.accounts, ...(lookup.secrets ? [lookup.secrets] : [])];
  if (missing.length) {
    throw new RickError('FACT_MISSING', `missing host facts: ${missing.join(', ')}`, {
      hint: missingFactsHint(lookup),
    });
  }
  return lookup.values;
}

/**
 * Refuses, before anything on the host changes, when a group or user that the
 * bundle uses but does not create itself is missing: systemd-sysusers would
 * otherwise invent it (an `m` line creates a missing group with a random GID),
 * and infrastructure groups such as `postgres-clients` must be the real ones.
 */
/**
 * The groups and users the bundle uses but does not create that are
 * missing here, `group NAME` / `user NAME`.
 */
export async function missingRequiredAccounts(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
  accounts: Accounts,
): Promise<string[]> {
  const required = requiredExistingAccounts(manifest, bundleSysusers(manifest, files));
  const [groups, users] = await Promise.all([
    Promise.all(required.groups.map(async (g) => ((await accounts.group(g)) ? undefined : g))),
    Promise.all(required.users.map(async (u) => ((await accounts.user(u)) ? undefined : u))),
  ]);
  return [
    ...groups.filter((g) => g !== undefined).map((g) => `group ${g}`),
    ...users.filter((u) => u !== undefined).map((u) => `user ${u}`),
  ];
}

export async function checkRequiredAccounts(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
  accounts: Accounts,
): Promise<void> {
  const missing = await missingRequiredAccounts(manifest, files, accounts);
  if (missing.length) {
    throw new RickError(
      'FACT_MISSING',
      `missing host facts: ${missing.join(', ')} (the bundle uses them but does not create them)`,
      {
        hint: 'create these infrastructure groups/users first (e.g. with the database role); rick will not invent them',
      },
    );
  }
}
