/**
 * What a bundle's units need from a host beyond the `restricted` profile:
 * declared in bundle.yaml, recorded in the signed manifest, granted by each
 * host in /etc/rick/policy.d/<bundle>.conf. Both programs read the same
 * forms, so that a need the builder records is the need a host compares with
 * its grant, word for word. Pure.
 *
 * Each need is a short canonical string of its kind:
 *
 *   groups        postgres-clients, 4001    a host group the containers join (gid("…") or a literal GID)
 *   users         postgres, root, 1000      a host user the containers run as (uid("…") or a literal UID); root: uid 0
 *   paths         /var/lib/app:rw           a host path mounted or written, ro or rw
 *   ports         0.0.0.0:443/tcp           a published address and port (range, or * for any)
 *   capabilities  NET_ADMIN, ALL            added beyond podman's default set
 *   devices       /dev/fuse                 a host device (or directory of devices)
 *   namespaces    network                   a host namespace shared: network pid ipc uts user cgroup
 *   sysctls       net.core.somaxconn        beyond the Pod Security "safe" set
 *   unconfined    seccomp                   confinement turned off: selinux apparmor seccomp proc
 *   service       ExecStartPre              a [Service] directive that acts on the host
 *   secrets       gitea_token               a podman secret (rick creates none: every one is the host's)
 *   volumes       systemd-gitea-data        a named volume, or a `.volume` unit, of another bundle
 *   units         podman.service            a unit of another bundle or of the host, depended on or activated
 *   databases     postgresql:gitea          a PostgreSQL database and its role the installer creates (src/bundle/databases.ts)
 *   sites         http://:80                a Caddy site address beyond a plain host name: a catch-all or a path (src/bundle/site-address.ts)
 *   privileged    true                      anything else `restricted` refuses (docs/policy.md)
 */
import * as z from 'zod';
import { databaseNeedProblem } from './databases.js';
import { normalizeSiteAddress } from './site-address.js';
import './zod.js';

export const needKinds = [
  'groups',
  'users',
  'paths',
  'ports',
  'capabilities',
  'devices',
  'namespaces',
  'sysctls',
  'unconfined',
  'service',
  'secrets',
  'volumes',
  'units',
  'databases',
  'sites',
] as const;
export type NeedKind = (typeof needKinds)[number];

/** One need: a list kind and its canonical value, or the privileged profile. */
export type Need = { kind: NeedKind; value: string } | { kind: 'privileged' };

export const namespaceNames = ['network', 'pid', 'ipc', 'uts', 'user', 'cgroup'] as const;
export const unconfinedNames = ['selinux', 'apparmor', 'seccomp', 'proc'] as const;

/** An account name, or a literal numeric id (`1000`), which is the same id on every host. */
const accountName = /^(?:[a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})$/;
const absolutePath = /^\/(?:[^/\0]+(?:\/[^/\0]+)*)?$/;

/** Problem with a path, or undefined when it is absolute and canonical. */
export function pathProblem(path: string): string | undefined {
  if (!absolutePath.test(path)) return 'must be an absolute path without a trailing /';
  if (path.split('/').some((s) => s === '.' || s === '..')) return 'must not contain . or ..';
  if (/[\s%$]/.test(path)) return 'must not contain whitespace, % or $';
  return undefined;
}

/** A podman object name (volume, secret), as podman accepts it: no `/`, `,` or `=`. */
const objectName = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;
/** A systemd unit name with its type (systemd's unit_name_is_valid, instances included). */
const unitName =
  /^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(service|socket|target|device|mount|automount|swap|timer|path|slice|scope|container|pod|volume|network|image|build|kube)$/;

const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** `ADDRESS:PORTS/PROTO`: ADDRESS an IPv4, a bracketed IPv6 or `*`; PORTS `N`, `N-M` or `*`. */
const portPattern = /^(\*|\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\*|\d{1,5}(?:-\d{1,5})?)\/(tcp|udp|sctp)$/;

export interface PortSpec {
  address: string;
  /** Inclusive range; [0, 65535] for `*`. */
  from: number;
  to: number;
  protocol: string;
}

export function parsePortNeed(value: string): PortSpec | undefined {
  const m = portPattern.exec(value);
  if (!m) return undefined;
  const [, address = '', ports = '', protocol = ''] = m;
  if (address !== '*' && !address.startsWith('[') && !ipv4.test(address)) return undefined;
  let from = 0;
  let to = 65535;
  if (ports !== '*') {
    const [a = '', b] = ports.split('-');
    from = Number(a);
    to = b === undefined ? from : Number(b);
    if (from < 1 || to > 65535 || from > to) return undefined;
  }
  return { address: address.toLowerCase(), from, to, protocol };
}

export function formatPortNeed(p: PortSpec): string {
  const ports =
    p.from === 0 && p.to === 65535 ? '*' : p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`;
  return `${p.address}:${ports}/${p.protocol}`;
}

/** Loopback addresses: publishing on them is within `restricted`. */
export function isLoopback(address: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(address) || address === '[::1]';
}

/** Problem with one need's value, or undefined when it is canonical. */
export function needValueProblem(kind: NeedKind, value: string): string | undefined {
  switch (kind) {
    case 'groups':
    case 'users':
      return accountName.test(value) ? undefined : 'must be an account name or a numeric id';
    case 'paths': {
      const m = /^(.*):(ro|rw)$/.exec(value);
      if (!m) return 'must be PATH:ro or PATH:rw';
      return pathProblem(m[1]!);
    }
    case 'ports':
      return parsePortNeed(value)
        ? undefined
        : 'must be ADDRESS:PORT/PROTOCOL, e.g. 0.0.0.0:443/tcp, [::]:8000-8010/udp, *:53/udp';
    case 'capabilities':
      return /^(ALL|[A-Z][A-Z0-9_]*)$/.test(value) && !value.startsWith('CAP_')
        ? undefined
        : 'must be a capability name without CAP_, e.g. NET_ADMIN, or ALL';
    case 'devices':
      return value.startsWith('/dev/') ? pathProblem(value) : 'must be a path under /dev';
    case 'namespaces':
      return (namespaceNames as readonly string[]).includes(value)
        ? undefined
        : `must be one of ${namespaceNames.join(', ')}`;
    case 'sysctls':
      return /^[a-z0-9_]+(\.[A-Za-z0-9_*-]+)+$/.test(value) ? undefined : 'must be a sysctl name';
    case 'unconfined':
      return (unconfinedNames as readonly string[]).includes(value)
        ? undefined
        : `must be one of ${unconfinedNames.join(', ')}`;
    case 'service':
      return /^[A-Z][A-Za-z]+$/.test(value) ? undefined : 'must be a [Service] directive name';
    case 'secrets':
      return objectName.test(value) ? undefined : 'must be a podman secret name';
    case 'volumes':
      return objectName.test(value)
        ? undefined
        : 'must be a named volume or a .volume unit, e.g. systemd-gitea-data';
    case 'units':
      return unitName.test(value)
        ? undefined
        : 'must be a systemd unit name, e.g. podman.service or reboot.target';
    case 'databases':
      return databaseNeedProblem(value);
    case 'sites': {
      const a = normalizeSiteAddress(value);
      if ('problem' in a) return a.problem;
      return a.address === value
        ? undefined
        : `must be written in its normal form, ${a.address} (scheme://host:port/path)`;
    }
  }
}

const needList = (kind: NeedKind) =>
  z
    .array(
      z.string().superRefine((value, ctx) => {
        const problem = needValueProblem(kind, value);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    )
    .default([]);

/** The `needs` of bundle.yaml (rendered) and of the manifest. */
export const needsSchema = z.strictObject({
  groups: needList('groups'),
  users: needList('users'),
  paths: needList('paths'),
  ports: needList('ports'),
  capabilities: needList('capabilities'),
  devices: needList('devices'),
  namespaces: needList('namespaces'),
  sysctls: needList('sysctls'),
  unconfined: needList('unconfined'),
  service: needList('service'),
  secrets: needList('secrets'),
  volumes: needList('volumes'),
  units: needList('units'),
  databases: needList('databases'),
  sites: needList('sites'),
  privileged: z.boolean().default(false),
});
export type Needs = z.infer<typeof needsSchema>;

export function emptyNeeds(): Needs {
  return {
    groups: [],
    users: [],
    paths: [],
    ports: [],
    capabilities: [],
    devices: [],
    namespaces: [],
    sysctls: [],
    unconfined: [],
    service: [],
    secrets: [],
    volumes: [],
    units: [],
    databases: [],
    sites: [],
    privileged: false,
  };
}

/** Sorted, without duplicates: the form recorded in the manifest. */
export function canonicalNeeds(needs: Needs): Needs {
  const out = emptyNeeds();
  for (const kind of needKinds) out[kind] = [...new Set(needs[kind])].sort();
  out.privileged = needs.privileged;
  return out;
}

/** Kinds added after manifest schemaVersion 2 first shipped. */
const laterKinds: readonly NeedKind[] = ['secrets', 'volumes', 'units', 'databases', 'sites'];

/**
 * The needs as the manifest records them: the later kinds only when a bundle
 * has them, so that an installer that predates them still reads a manifest
 * that does not use them (its schema is strict), and refuses one that does.
 */
export function recordedNeeds(needs: Needs): Partial<Needs> {
  const out: Partial<Needs> = { ...needs };
  for (const kind of laterKinds) if (needs[kind].length === 0) delete out[kind];
  return out;
}

export function needsList(needs: Needs): Need[] {
  const list: Need[] = [];
  for (const kind of needKinds) for (const value of needs[kind]) list.push({ kind, value });
  if (needs.privileged) list.push({ kind: 'privileged' });
  return list;
}

export function needsFrom(list: readonly Need[]): Needs {
  const needs = emptyNeeds();
  for (const need of list) {
    if (need.kind === 'privileged') needs.privileged = true;
    else needs[need.kind].push(need.value);
  }
  return canonicalNeeds(needs);
}

const kindWord: Record<Need['kind'], string> = {
  groups: 'group',
  users: 'user',
  paths: 'path',
  ports: 'port',
  capabilities: 'capability',
  devices: 'device',
  namespaces: 'host namespace',
  sysctls: 'sysctl',
  unconfined: 'unconfined',
  service: 'service directive',
  secrets: 'podman secret',
  volumes: 'volume',
  units: 'unit',
  databases: 'database',
  sites: 'site address',
  privileged: 'privileged',
};

/** `path /var/lib/app:rw`, `group postgres-clients`, `privileged`. */
export function formatNeed(need: Need): string {
  return need.kind === 'privileged' ? 'privileged' : `${kindWord[need.kind]} ${need.value}`;
}

export function needKey(need: Need): string {
  return need.kind === 'privileged' ? 'privileged' : `${need.kind}:${need.value}`;
}

function under(path: string, root: string): boolean {
  return root === '/' || path === root || path.startsWith(`${root}/`);
}

/**
 * Host paths a grant covers only when it names them exactly: a grant of
 * `/run` must not hand over the container engine's socket below it.
 */
export const exactGrantPaths: readonly string[] = [
  '/',
  '/etc',
  '/root',
  '/proc',
  '/sys',
  '/dev',
  '/boot',
  '/run/podman/podman.sock',
  '/var/run/podman/podman.sock',
  '/run/docker.sock',
  '/var/run/docker.sock',
  '/run/containerd/containerd.sock',
  '/run/crio/crio.sock',
  '/run/systemd',
  '/var/run/systemd',
  '/run/dbus',
  '/var/run/dbus',
  '/var/lib/containers',
  '/var/lib/docker',
  '/run/containers',
  '/var/lib/rick',
];

/**
 * Whether a granted set covers one need: list kinds by equal value, except
 * paths (a granted directory covers what lies below it, rw covers ro; the
 * paths above need an exact grant), ports (a granted range or `*` covers the
 * ports and addresses inside it), devices (a granted directory of devices
 * covers the devices in it) and capabilities (ALL covers every one).
 * `privileged` covers everything.
 */
export function covers(granted: Needs, need: Need): boolean {
  if (granted.privileged) return true;
  if (need.kind === 'privileged') return false;
  const values = granted[need.kind];
  switch (need.kind) {
    case 'paths': {
      const [path, access] = splitPathNeed(need.value);
      const exact = exactGrantPaths.includes(path);
      return values.some((g) => {
        const [gPath, gAccess] = splitPathNeed(g);
        if (access === 'rw' && gAccess !== 'rw') return false;
        return exact ? gPath === path : under(path, gPath);
      });
    }
    case 'ports': {
      const p = parsePortNeed(need.value);
      if (!p) return false;
      return values.some((g) => {
        const q = parsePortNeed(g);
        return (
          q !== undefined &&
          q.protocol === p.protocol &&
          (q.address === '*' || q.address === p.address) &&
          q.from <= p.from &&
          p.to <= q.to
        );
      });
    }
    case 'devices':
      return values.some((g) => under(need.value, g));
    case 'capabilities':
      return values.includes('ALL') || values.includes(need.value);
    default:
      return values.includes(need.value);
  }
}

export function splitPathNeed(value: string): [string, 'ro' | 'rw'] {
  const colon = value.lastIndexOf(':');
  return [value.slice(0, colon), value.slice(colon + 1) === 'rw' ? 'rw' : 'ro'];
}

/** The needs of `wanted` that `granted` does not cover, each once, in order. */
export function uncovered(granted: Needs, wanted: readonly Need[]): Need[] {
  const seen = new Set<string>();
  const out: Need[] = [];
  for (const need of wanted) {
    const key = needKey(need);
    if (seen.has(key) || covers(granted, need)) continue;
    seen.add(key);
    out.push(need);
  }
  return out;
}

/**
 * The needs of `list` that no other need of it covers: what a grant of them
 * all must name (`/var/lib/app:rw` makes `/var/lib/app/data:rw` redundant,
 * `privileged` everything else).
 */
export function minimalNeeds(list: readonly Need[]): Need[] {
  return list.filter(
    (need) =>
      !list.some((other) => needKey(other) !== needKey(need) && covers(needsFrom([other]), need)),
  );
}
