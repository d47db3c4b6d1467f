/**
 * What a bundle's tmpfiles.d fragments may do. The installer applies them as
 * root (`systemd-tmpfiles --create`), and tmpfiles.d can do nearly anything
 * a root shell can: create symlinks over /etc, write to /proc/sys, chown
 * trees recursively, remove paths. A bundle only needs the state directories
 * of its own service, so fragments are held to a small policy. Pure.
 *
 * - Line types: `d` (directory), `e` (adjust an existing directory),
 *   `f` (file, created only if missing), `z` (adjust one path's mode/owner),
 *   with the `!` and `-` modifiers. No links, devices, copies, writes,
 *   removals, recursive changes, attributes or ACLs.
 * - Paths: absolute, canonical, no `%` specifiers, and inside the bundle's
 *   own state: `/var/lib/<name>`, `/var/cache/<name>`, `/var/log/<name>`,
 *   `/srv/<name>` or `/run/<name>` (or `<name>-<suffix>`), where `<name>` is
 *   the bundle's name; never inside the state of rick, systemd or podman
 *   (whatever the bundle is called). `d` and `z` adjust an existing path's
 *   mode and owner, so a bundle must not reach another service's directory.
 * - Modes: no setuid bit; setgid only on directories.
 * - Owners: `-` or a user/group name, never a number (a number names
 *   whoever holds that id). Which names a bundle may use, and which
 *   existing paths it may touch at all, the host decides
 *   (host/intake/account-policy.ts, host/intake/ownership.ts).
 */
import { RickError } from '../errors.js';
import type { Manifest } from './manifest.js';
import { checkPlaceholderName } from './placeholders.js';

export interface TmpfilesEntry {
  type: string;
  path: string;
  mode: string;
  user: string;
  group: string;
  source: string;
}

const allowedType = /^[defz][!-]*$/;
/**
 * Where a bundle's tmpfiles.d may create anything. rick-update.service must
 * be able to write under each of these (its ReadWritePaths; a test checks).
 */
export const TMPFILES_ROOTS: readonly string[] = [
  '/var/lib/',
  '/var/cache/',
  '/var/log/',
  '/srv/',
  '/run/',
];
const allowedRoots = TMPFILES_ROOTS;
const forbiddenRoots = [
  '/var/lib/rick',
  '/var/lib/systemd',
  '/var/lib/containers',
  '/var/cache/rick',
  '/var/log/journal',
  '/run/systemd',
  '/run/user',
  '/run/containers',
  '/run/lock',
];

function under(path: string, root: string): boolean {
  return path === root || path.startsWith(`${root}/`);
}

function pathProblem(path: string, bundle: string): string | undefined {
  if (!path.startsWith('/')) return `path ${JSON.stringify(path)} is not absolute`;
  if (path.includes('%')) return `path ${JSON.stringify(path)} uses a specifier`;
  const segments = path.slice(1).split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    return `path ${JSON.stringify(path)} is not canonical`;
  }
  const forbidden = forbiddenRoots.find((r) => under(path, r));
  if (forbidden) return `path ${path} lies in ${forbidden}, which a bundle may not touch`;
  const owned = allowedRoots.some((root) => {
    if (!path.startsWith(root)) return false;
    const top = path.slice(root.length).split('/')[0] ?? '';
    return top === bundle || top.startsWith(`${bundle}-`);
  });
  if (!owned) {
    return `path ${path} is outside the bundle's own state (${allowedRoots.map((r) => `${r}${bundle}`).join(', ')})`;
  }
  return undefined;
}

/** The state root a path lies under (e.g. `/var/lib/`), or undefined. */
export function stateRootOf(path: string): string | undefined {
  return allowedRoots.find((root) => path.startsWith(root));
}

function ownerProblem(kind: 'user' | 'group', value: string): string | undefined {
  if (value === '-' || value === '') return undefined;
  const name = value.startsWith(':') ? value.slice(1) : value;
  if (/^[0-9]+$/.test(name)) {
    return `${kind} ${name} is a number, which names whoever holds that id; name the ${kind}`;
  }
  const problem = checkPlaceholderName(kind === 'user' ? 'uid' : 'gid', name);
  return problem ? `${kind} field: ${problem}` : undefined;
}

/** A user or group field without tmpfiles.d's `:` prefix; undefined for `-`. */
export function ownerName(value: string): string | undefined {
  if (value === '-' || value === '') return undefined;
  return value.startsWith(':') ? value.slice(1) : value;
}

function modeProblem(type: string, mode: string): string | undefined {
  if (mode === '-' || mode === '') return undefined;
  const digits = mode.replace(/^[~:]+/, '');
  if (!/^[0-7]{3,4}$/.test(digits)) return `mode ${JSON.stringify(mode)} is not octal`;
  const value = Number.parseInt(digits, 8);
  if (value & 0o4000) return `mode ${mode} sets the setuid bit`;
  if (value & 0o2000 && !type.startsWith('d') && !type.startsWith('e')) {
    return `mode ${mode} sets the setgid bit on a file`;
  }
  return undefined;
}

/**
 * Parses and checks one fragment; throws BUNDLE_INVALID listing every bad
 * line. `bundle` is the bundle's name: the directory it owns under each
 * state root.
 */
export function parseTmpfiles(text: string, file: string, bundle: string): TmpfilesEntry[] {
  const entries: TmpfilesEntry[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((raw, index) => {
    const source = `${file}:${index + 1}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (line.includes('"') || line.includes('\\')) {
      problems.push(`${source}: quoting and escapes are not allowed in a bundle's tmpfiles.d`);
      return;
    }
    const [type = '', path = '', mode = '-', user = '-', group = '-'] = line.split(/\s+/);
    if (!allowedType.test(type)) {
      problems.push(
        `${source}: line type ${JSON.stringify(type)} is not allowed (only d, e, f, z)`,
      );
      return;
    }
    const problem =
      pathProblem(path, bundle) ??
      modeProblem(type, mode) ??
      ownerProblem('user', user) ??
      ownerProblem('group', group);
    if (problem) {
      problems.push(`${source}: ${problem}`);
      return;
    }
    entries.push({ type, path, mode, user, group, source });
  });
  if (problems.length) {
    throw new RickError('BUNDLE_INVALID', `tmpfiles.d fragment refused: ${problems.join('; ')}`);
  }
  return entries;
}

/** Parses and checks every tmpfiles fragment of a bundle (files of kind `tmpfiles`). */
export function bundleTmpfiles(
  manifest: Manifest,
  files: ReadonlyMap<string, Buffer>,
): TmpfilesEntry[] {
  const entries: TmpfilesEntry[] = [];
  const problems: string[] = [];
  for (const f of manifest.files) {
    if (f.kind !== 'tmpfiles') continue;
    const data = files.get(f.path);
    if (!data) continue;
    try {
      entries.push(...parseTmpfiles(data.toString('utf8'), f.path, manifest.name));
    } catch (error) {
      problems.push((error as Error).message.replace(/^tmpfiles\.d fragment refused: /, ''));
    }
  }
  if (problems.length) {
    throw new RickError('BUNDLE_INVALID', `tmpfiles.d fragment refused: ${problems.join('; ')}`);
  }
  return entries;
}

/** Checks every tmpfiles fragment of a bundle; throws BUNDLE_INVALID listing every bad line. */
export function checkBundleTmpfiles(manifest: Manifest, files: ReadonlyMap<string, Buffer>): void {
  bundleTmpfiles(manifest, files);
}
