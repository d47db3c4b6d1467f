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

/**
 * Resolves every fact the manifest declares. `secrets` is undefined when the
 * secrets file does not exist; that is fine for a bundle that needs no secret.
 * Throws one FACT_MISSING naming every missing fact, e.g.
 * `missing host facts: group postgres-clients, secret authentik_secret_key (in /etc/rick/secrets/authentik.env)`.
 */
export async function resolveFacts(
  manifest: Manifest,
  accounts: Accounts,
  secrets: ReadonlyMap<string, string> | undefined,
  options: ResolveFactsOptions = {},
): Promise<FactValues> {
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
  if (missingSecrets.length) {
    const where = options.secretsPath
      ? ` (in ${options.secretsPath}${secrets === undefined ? ', which does not exist' : ''})`
      : secrets === undefined
        ? ' (no secrets file)'
        : '';
    missing.push(`${missingSecrets.join(', ')}${where}`);
  }
  if (missing.length) {
    throw new RickError('FACT_MISSING', `missing host facts: ${missing.join(', ')}`, {
      hint: missingSecrets.length
        ? 'add the secrets (KEY=value, file root-owned, mode 0600) and create the groups/users named'
        : 'create the groups and users named (getent must find them)',
    });
  }
  return values;
}

/**
 * Refuses, before anything on the host changes, when a group or user that the
 * bundle uses but does not create itself is missing: systemd-sysusers would
 * otherwise invent it (an `m` line creates a missing group with a random GID),
 * and infrastructure groups such as `postgres-clients` must be the real ones.
 */
export async function checkRequiredAccounts(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
  accounts: Accounts,
): Promise<void> {
  const required = requiredExistingAccounts(manifest, bundleSysusers(manifest, files));
  const [groups, users] = await Promise.all([
    Promise.all(required.groups.map(async (g) => ((await accounts.group(g)) ? undefined : g))),
    Promise.all(required.users.map(async (u) => ((await accounts.user(u)) ? undefined : u))),
  ]);
  const missing = [
    ...groups.filter((g) => g !== undefined).map((g) => `group ${g}`),
    ...users.filter((u) => u !== undefined).map((u) => `user ${u}`),
  ];
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
