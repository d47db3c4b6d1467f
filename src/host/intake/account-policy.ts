/**
 * Which users and groups a bundle may name on this host: an allow-list, not
 * a list of groups to avoid (there are always more: staff, adm,
 * systemd-journal, …).
 *
 * - Groups: those the bundle creates itself (its `g` lines, and the group a
 *   `u` line creates with the user), and the infrastructure groups the host
 *   declares (INFRASTRUCTURE_GROUPS in rick.conf, default postgres-clients
 *   and valkey-clients). That holds for `m` lines, for a `u` line's primary
 *   group, for `gid` facts (`--group-add`) and for the group of a
 *   tmpfiles.d line (root aside).
 * - Users: those the bundle creates itself, for `uid` facts and the owner of
 *   a tmpfiles.d line (root aside); `m` lines are held to that by the
 *   archive check already.
 * - A bundle never creates an infrastructure group: the host must have it
 *   beforehand (systemd-sysusers would otherwise invent it with a random GID,
 *   and the socket directories belong to the real one).
 *
 * Whether a name the bundle creates already exists, and whose it is, is
 * ownership.ts's part. Pure, but for reading rick.conf.
 */
import { readFile } from 'node:fs/promises';
import type { Manifest } from '../../bundle/manifest.js';
import type { SysusersEffects } from '../../bundle/sysusers.js';
import { ownerName, type TmpfilesEntry } from '../../bundle/tmpfiles.js';
import { describe, RickError } from '../../errors.js';
import { DEFAULT_INFRASTRUCTURE_GROUPS, parseInfrastructureGroups } from '../../feed/config.js';

/**
 * INFRASTRUCTURE_GROUPS from rick.conf; the default when the file or the key
 * is absent. A malformed file is CONFIG_INVALID.
 */
export async function readInfrastructureGroups(configPath: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      return [...DEFAULT_INFRASTRUCTURE_GROUPS];
    throw new RickError('IO_ERROR', `cannot read ${configPath}: ${describe(error)}`, {
      cause: error,
    });
  }
  return parseInfrastructureGroups(text, configPath);
}

export interface AccountPolicyInput {
  manifest: Pick<Manifest, 'facts'>;
  effects: SysusersEffects;
  tmpfiles: readonly TmpfilesEntry[];
  infrastructureGroups: ReadonlySet<string>;
}

/** Every name the bundle may not use here, one line each with where it is named. */
export function accountPolicyProblems(input: AccountPolicyInput): string[] {
  const { effects, infrastructureGroups: infra } = input;
  const problems: string[] = [];
  for (const created of effects.createdBy.values()) {
    if (created.kind === 'group' && infra.has(created.name)) {
      problems.push(
        `${created.source}: creates ${created.name}, an infrastructure group the host must already have`,
      );
    }
  }
  const groupAllowed = (g: string) => effects.groups.has(g) || infra.has(g);
  const notAllowed = (g: string) =>
    `group ${g} is neither created by the bundle nor an infrastructure group of this host`;
  for (const named of effects.namedGroups) {
    if (!groupAllowed(named.name)) problems.push(`${named.source}: ${notAllowed(named.name)}`);
  }
  for (const fact of input.manifest.facts) {
    if (fact.kind === 'gid' && !groupAllowed(fact.name)) {
      problems.push(`gid fact ${fact.name}: ${notAllowed(fact.name)}`);
    }
    if (fact.kind === 'uid' && !effects.users.has(fact.name)) {
      problems.push(`uid fact ${fact.name}: user ${fact.name} is not created by the bundle`);
    }
  }
  for (const e of input.tmpfiles) {
    const user = ownerName(e.user);
    const group = ownerName(e.group);
    if (user !== undefined && user !== 'root' && !effects.users.has(user)) {
      problems.push(`${e.source}: user ${user} is not created by the bundle`);
    }
    if (group !== undefined && group !== 'root' && !groupAllowed(group)) {
      problems.push(`${e.source}: ${notAllowed(group)}`);
    }
  }
  return problems;
}
