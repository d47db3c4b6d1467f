/**
 * `sensitive-paths`: the host paths whose mount is its own rule (the host's
 * root, its configuration, kernel interfaces, engine sockets and state),
 * granted only when named exactly. Every check of a host path asks here.
 */
import type { RestrictedRule, RuleDoc } from './rule.js';

/** Paths whose mount is its own rule: the host's root, its configuration, kernel interfaces, engine sockets. */
const sensitiveRoots = ['/', '/etc', '/root', '/proc', '/sys', '/dev', '/boot'];
const engineStates = [
  '/run/podman',
  '/var/run/podman',
  '/run/docker.sock',
  '/var/run/docker.sock',
  '/run/containerd',
  '/run/crio',
  '/var/lib/containers',
  '/var/lib/docker',
  '/run/containers',
  '/run/systemd',
  '/var/run/systemd',
  '/run/dbus',
  '/var/run/dbus',
  '/var/lib/rick',
];

function within(path: string, root: string): boolean {
  return root === '/' || path === root || path.startsWith(`${root}/`);
}

export function isSensitivePath(path: string): boolean {
  if (sensitiveRoots.includes(path)) return true;
  return engineStates.some((s) => within(path, s) || within(s, path));
}

export const sensitivePathsRule: RestrictedRule = {
  rules: ['sensitive-paths'],
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const sensitivePathsDocs: readonly RuleDoc[] = [
  {
    id: 'sensitive-paths',
    podSecurity: 'HostPath Volumes (Baseline)',
    refuses:
      "mounts of `/`, `/etc`, `/root`, `/proc`, `/sys`, `/dev`, `/boot`, and of a container engine's socket or state (`/run/podman`, `/var/run/docker.sock`, `/run/containerd`, `/run/crio`, `/var/lib/containers`, `/run/systemd`, `/run/dbus`, `/var/lib/rick`, above or below them)",
    allows: '`paths` naming that very path',
  },
];
