/**
 * Host accounts as a unit names them, shared by the users and groups rules:
 * a `uid()`/`gid()` placeholder, a number or a name, and id mappings.
 */
import type { UnitLine } from '../../../bundle/unit-file.js';
import {
  cannotTell,
  expandValue,
  placeholderOnly,
  push,
  type RuleId,
  refuse,
  type UnitContext,
} from './context.js';

/** Groups whose membership is as good as root: named in the refusal so an operator thinks twice. */
const rootEquivalentGroups: ReadonlySet<string> = new Set([
  'root',
  'wheel',
  'sudo',
  'admin',
  'disk',
  'kmem',
  'shadow',
  'docker',
  'lxd',
  'libvirt',
]);

/** A `uid:gid`-style id part: a placeholder, a number or a name. */
export function idUse(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  kind: 'users' | 'groups',
  raw: string,
): 'root' | 'other' {
  const fact = kind === 'users' ? 'uid' : 'gid';
  const m = placeholderOnly.exec(raw);
  const rule: RuleId = kind === 'users' ? 'host-users' : 'host-groups';
  if (m) {
    if (m[1] !== fact) {
      refuse(ctx, line, written, 'unjudged', `${m[1]}() where ${fact}() belongs`);
      return 'other';
    }
    const name = m[2]!;
    (kind === 'users' ? ctx.accounts.users : ctx.accounts.groups).add(name);
    if (name === 'root') {
      push(ctx, line, written, kind === 'users' ? 'run-as-non-root' : 'host-groups', {
        kind,
        value: 'root',
      });
      return 'root';
    }
    const own = kind === 'users' ? ctx.input.ownUsers : ctx.input.ownGroups;
    if (kind === 'groups' && rootEquivalentGroups.has(name)) {
      push(ctx, line, written, rule, { kind, value: name }, `${name} is as good as root`);
    } else if (!own.has(name)) {
      push(ctx, line, written, rule, { kind, value: name });
    }
    return 'other';
  }
  const value = expandValue(raw, ctx.service);
  if (value === undefined) {
    cannotTell(ctx, line, written, kind === 'users' ? 'the user' : 'the group');
    return 'other';
  }
  if (/^[0-9]+$/.test(value)) {
    const id = Number(value);
    if (id === 0) {
      push(ctx, line, written, kind === 'users' ? 'run-as-non-root' : 'host-groups', {
        kind,
        value: 'root',
      });
      return 'root';
    }
    push(
      ctx,
      line,
      written,
      rule,
      { kind, value: String(id) },
      `a literal ${kind === 'users' ? 'UID' : 'GID'}: write ${fact}("name") so that each host resolves its own`,
    );
    return 'other';
  }
  if (value === 'root') {
    push(ctx, line, written, kind === 'users' ? 'run-as-non-root' : 'host-groups', {
      kind,
      value: 'root',
    });
    return 'root';
  }
  if (kind === 'users') {
    push(
      ctx,
      line,
      written,
      'run-as-non-root',
      { kind: 'users', value: 'root' },
      `user ${JSON.stringify(value)} is looked up in the image, which may make it root: use uid("name") or a numeric UID`,
    );
    return 'root';
  }
  refuse(
    ctx,
    line,
    written,
    'host-groups',
    `group ${JSON.stringify(value)} is looked up in the image, so no host can tell which group it grants: use gid("name")`,
  );
  return 'other';
}

/** `--uidmap`/`--gidmap CONTAINER:HOST:SIZE`: a range holding host id 0 maps host root in. */
export function idMapUse(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  value: string,
  kind: 'users' | 'groups',
): void {
  const m = /^[+@]?(\d+):[+@]?(\d+):(\d+)$/.exec(value);
  if (!m) {
    refuse(ctx, line, written, 'unjudged', 'an id mapping rick cannot read');
    return;
  }
  if (Number(m[2]) === 0 && Number(m[3]) > 0) {
    push(
      ctx,
      line,
      written,
      kind === 'users' ? 'run-as-non-root' : 'host-groups',
      { kind, value: 'root' },
      'maps host id 0 into the container',
    );
  }
}
