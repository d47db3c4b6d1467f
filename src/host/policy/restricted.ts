/**
 * The `restricted` profile: what a bundle's Quadlet units use from the host,
 * judged rule by rule, each rule beside the Pod Security Standards control
 * it corresponds to (docs/policy.md has the table). Pure; the builder and
 * the installer run the same judge over the same unit text (placeholders
 * still in), so a bundle the builder passed is judged the same way on every
 * host, and only the host adds what only it knows (src/host/policy/judge.ts).
 *
 * A finding is one use beyond the profile, with the need that would allow
 * it: a group, a path, a port… or `privileged` for what the profile refuses
 * outright (flags it does not know, values it cannot tell).
 */
import { posix } from 'node:path';
import { type Need, parsePortNeed, pathProblem } from '../../bundle/needs.js';
import {
  type FlagSpec,
  type ParsedFlag,
  parsePodmanFlags,
  splitArgs,
  splitStrv,
} from '../../bundle/podman-args.js';
import {
  lookupAll,
  lookupBoolean,
  lookupLast,
  parseUnitFile,
  readQuadletUnits,
  type UnitFile,
  type UnitLine,
  unitTypeOf,
} from '../../bundle/unit-file.js';
import { type BundleNames, bundleNames } from './bundle-names.js';
import {
  type Control,
  controlRules,
  imageSource,
  joinedContainer,
  joinedPod,
  namedVolume,
  secretUse,
  volumeName,
} from './controls.js';
import {
  type FinalCheckName,
  type FlagKey,
  type KeyCheckName,
  type LineCheckName,
  type QuadletKind,
  quadletKinds,
} from './restricted/kinds.js';
import { judgeSocket, type LineControl } from './socket-check.js';
import { judgeUnitReferences } from './unit-references.js';

/** The rules of `restricted`, as docs/policy.md names them. */
export const restrictedRules = [
  'privileged',
  'capabilities',
  'host-namespaces',
  'host-paths',
  'sensitive-paths',
  'devices',
  'host-ports',
  'selinux',
  'apparmor',
  'seccomp',
  'proc-mount',
  'sysctls',
  'run-as-non-root',
  'host-users',
  'host-groups',
  'service-directives',
  'host-commands',
  'unknown-flags',
  'unjudged',
  'site-addresses',
  'site-paths',
  ...controlRules,
] as const;
export type RuleId = (typeof restrictedRules)[number];

export interface Finding {
  rule: RuleId;
  /** The unit file, e.g. `authentik-server.container`. */
  unit: string;
  /** `<file>:<line>` of the key. */
  source: string;
  /** The key or flag as written, e.g. `Volume=/srv:/srv` or `PodmanArgs: --privileged`. */
  written: string;
  need: Need;
  /** Why, when the need alone does not say it. */
  detail?: string;
}

export interface JudgeInput {
  /** The bundle's Quadlet files, relative to its quadlet/ directory, placeholders still in. */
  files: ReadonlyMap<string, string>;
  bundle: string;
  /** Users and groups the bundle itself creates (its sysusers.d `u` and `g` lines). */
  ownUsers: ReadonlySet<string>;
  ownGroups: ReadonlySet<string>;
  /** The bundle's plain systemd units (systemd/), by unit name: they run on the host itself. */
  plainUnits?: ReadonlyMap<string, string>;
}

export interface Judgement {
  findings: Finding[];
  /** uid()/gid() names the units run as or join: a host checks what they resolve to. */
  accounts: { users: Set<string>; groups: Set<string> };
}

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

/** podman's default capabilities (containers.conf): adding one of these adds nothing. */
export const defaultCapabilities: ReadonlySet<string> = new Set([
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);

/** The Pod Security Standards' "safe" sysctls (namespaced, isolated from other pods). */
export const safeSysctls: ReadonlySet<string> = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
]);

/** SELinux types the Pod Security Standards allow. */
export const allowedSelinuxTypes: ReadonlySet<string> = new Set([
  'container_t',
  'container_init_t',
  'container_kvm_t',
  'container_engine_t',
]);

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

/** [Service] directives that only tune how systemd runs and restarts podman. */
const serviceAllowed = new Set([
  'Restart',
  'RestartSec',
  'RestartSteps',
  'RestartMaxDelaySec',
  'RestartMode',
  'RestartPreventExitStatus',
  'RestartForceExitStatus',
  'SuccessExitStatus',
  'TimeoutSec',
  'TimeoutStartSec',
  'TimeoutStopSec',
  'TimeoutAbortSec',
  'TimeoutStartFailureMode',
  'TimeoutStopFailureMode',
  'RuntimeMaxSec',
  'RuntimeRandomizedExtraSec',
  'WatchdogSec',
  'Type',
  'RemainAfterExit',
  'KillMode',
  'KillSignal',
  'RestartKillSignal',
  'FinalKillSignal',
  'SendSIGKILL',
  'SendSIGHUP',
  'OOMPolicy',
  'Slice',
  'CPUWeight',
  'StartupCPUWeight',
  'CPUQuota',
  'CPUQuotaPeriodSec',
  'AllowedCPUs',
  'AllowedMemoryNodes',
  'MemoryMin',
  'MemoryLow',
  'MemoryHigh',
  'MemoryMax',
  'MemorySwapMax',
  'MemoryZSwapMax',
  'TasksMax',
  'IOWeight',
  'StartupIOWeight',
  'ManagedOOMSwap',
  'ManagedOOMMemoryPressure',
  'ManagedOOMMemoryPressureLimit',
  'ManagedOOMPreference',
  'SyslogIdentifier',
  'SyslogFacility',
  'SyslogLevel',
  'SyslogLevelPrefix',
  'LogLevelMax',
  'LogRateLimitIntervalSec',
  'LogRateLimitBurst',
]);

const placeholderOnly = /^@@rick:(gid|uid|path):([^@]+)@@$/;

/** Where a unit judged here lives on a host, for quadlet's relative paths. */
function unitDir(bundle: string): string {
  return `/etc/containers/systemd/rick/${bundle}`;
}

interface UnitContext {
  unit: UnitFile;
  input: JudgeInput;
  findings: Finding[];
  accounts: Judgement['accounts'];
  /** The generated service's name without `.service`, for %N. */
  service: string;
  /** The containers, pods, volumes and units the bundle makes. */
  names: BundleNames;
}

function push(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  rule: RuleId,
  need: Need,
  detail?: string,
): void {
  ctx.findings.push({
    rule,
    unit: ctx.unit.name,
    source: line.source,
    written,
    need,
    ...(detail === undefined ? {} : { detail }),
  });
}

function pushControl(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  control: Control | undefined,
): void {
  if (control) push(ctx, line, written, control.rule, control.need, control.detail);
}

/** An image reference (`Image=`, `--infra-image`): a transport may read the host. */
function imageUse(ctx: UnitContext, line: UnitLine, written: string, raw: string): void {
  const value = expandValue(raw, ctx.service);
  if (value === undefined) {
    cannotTell(ctx, line, written, 'the image');
    return;
  }
  const source = imageSource(value);
  if (source === undefined) return;
  if ('rule' in source) {
    pushControl(ctx, line, written, source);
    return;
  }
  const path = hostPath(ctx, source.path);
  if (!path) {
    push(
      ctx,
      line,
      written,
      'image-sources',
      { kind: 'privileged' },
      `${source.detail}, which is not a plain path`,
    );
    return;
  }
  const rule: RuleId = isSensitivePath(path) ? 'sensitive-paths' : 'image-sources';
  const access = path === '/var/run/docker.sock' ? 'rw' : 'ro';
  push(ctx, line, written, rule, { kind: 'paths', value: `${path}:${access}` }, source.detail);
}

/**
 * The value systemd will hand podman: specifiers of a system unit resolved,
 * `$$` made `$`. Undefined when it cannot be told here (an environment
 * variable, a host-specific specifier).
 */
export function expandValue(value: string, service: string): string | undefined {
  const known: Record<string, string> = {
    '%': '%',
    t: '/run',
    S: '/var/lib',
    C: '/var/cache',
    L: '/var/log',
    E: '/etc',
    T: '/tmp',
    V: '/var/tmp',
    D: '/usr/share',
    h: '/root',
    s: '/bin/sh',
    u: 'root',
    U: '0',
    g: 'root',
    G: '0',
    n: `${service}.service`,
    N: service,
    p: service.split('@')[0] ?? service,
    P: service.split('@')[0] ?? service,
    j: (service.split('@')[0] ?? service).split('-').at(-1) ?? '',
    J: (service.split('@')[0] ?? service).split('-').at(-1) ?? '',
    i: service.includes('@') ? service.slice(service.indexOf('@') + 1) : '',
    I: service.includes('@') ? service.slice(service.indexOf('@') + 1) : '',
  };
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '%') {
      const next = value[i + 1];
      const v = next === undefined ? undefined : known[next];
      if (v === undefined) return undefined;
      out += v;
      i++;
    } else if (c === '$') {
      if (value[i + 1] !== '$') return undefined;
      out += '$';
      i++;
    } else {
      out += c;
    }
  }
  return out;
}

function cannotTell(ctx: UnitContext, line: UnitLine, written: string, what: string): void {
  push(
    ctx,
    line,
    written,
    'unjudged',
    { kind: 'privileged' },
    `${what} cannot be told before the unit runs (an environment variable or a host-specific specifier)`,
  );
}

/** A host path as quadlet resolves it (relative to the unit's directory), or why it cannot be judged. */
function hostPath(ctx: UnitContext, source: string): string | undefined {
  const resolved = source.startsWith('/')
    ? posix.normalize(source)
    : posix.join(unitDir(ctx.input.bundle), source);
  const trimmed = resolved.length > 1 ? resolved.replace(/\/+$/, '') : resolved;
  return pathProblem(trimmed) === undefined ? trimmed : undefined;
}

function pathUse(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  path: string,
  access: 'ro' | 'rw',
  what: string,
): void {
  const rule: RuleId = isSensitivePath(path) ? 'sensitive-paths' : 'host-paths';
  push(ctx, line, written, rule, { kind: 'paths', value: `${path}:${access}` }, what);
}

/** A bind source: host path, bundle file (read-only only) or named volume. */
function bindSource(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  raw: string,
  access: 'ro' | 'rw',
  what: string,
): void {
  const placeholder = placeholderOnly.exec(raw);
  if (placeholder?.[1] === 'path') {
    if (access === 'rw') {
      push(
        ctx,
        line,
        written,
        'host-paths',
        { kind: 'privileged' },
        `a bundle file mounted read-write could change its own generation; mount it with ro`,
      );
    }
    return;
  }
  if (raw.includes('@@rick:')) {
    push(ctx, line, written, 'unjudged', { kind: 'privileged' }, `${what} holds a host fact`);
    return;
  }
  const value = expandValue(raw, ctx.service);
  if (value === undefined) {
    cannotTell(ctx, line, written, what);
    return;
  }
  if (!value.startsWith('/') && !value.startsWith('.')) {
    pushControl(ctx, line, written, namedVolume(ctx.names, value));
    return;
  }
  const path = hostPath(ctx, value);
  if (!path) {
    push(ctx, line, written, 'host-paths', { kind: 'privileged' }, `${what} is not a plain path`);
    return;
  }
  pathUse(ctx, line, written, path, access, what);
}

/** `-v SRC:DST[:OPTIONS]` / Volume=. */
function volumeUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  // A placeholder holds colons of its own (`@@rick:path:env/x@@`): it is one source.
  const token = /^@@rick:[^@]*@@/.exec(value)?.[0];
  const parts = token
    ? [token, ...value.slice(token.length).replace(/^:/, '').split(':')]
    : value.split(':');
  if (token && value.length > token.length && value[token.length] !== ':') {
    push(
      ctx,
      line,
      written,
      'unjudged',
      { kind: 'privileged' },
      'the volume source holds a host fact',
    );
    return;
  }
  if (parts.length < 2) return; // an anonymous volume
  const options = (parts[2] ?? '').split(',').filter(Boolean);
  for (const o of options) {
    if (/^r?shared$/.test(o)) {
      push(
        ctx,
        line,
        written,
        'privileged',
        { kind: 'privileged' },
        `mount propagation ${o} lets the container's mounts reach the host`,
      );
    }
  }
  const writes = options.some((o) => ['z', 'Z', 'U'].includes(o));
  const readOnly = options.some((o) => ['ro', 'O'].includes(o)) && !writes;
  bindSource(ctx, line, written, parts[0]!, readOnly ? 'ro' : 'rw', 'the volume source');
}

/** `--mount type=bind,source=…,destination=…,ro` / Mount=, read as podman's CSV. */
function mountUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  if (value.includes('"')) {
    push(ctx, line, written, 'unjudged', { kind: 'privileged' }, 'a quoted mount option');
    return;
  }
  const fields = new Map<string, string>();
  for (const field of value.split(',')) {
    const eq = field.indexOf('=');
    fields.set(eq === -1 ? field : field.slice(0, eq), eq === -1 ? 'true' : field.slice(eq + 1));
  }
  const source = fields.get('source') ?? fields.get('src');
  const type = fields.get('type') ?? (source?.startsWith('/') ? 'bind' : 'volume');
  const prop = fields.get('bind-propagation');
  if (prop && /^r?shared$/.test(prop)) {
    push(
      ctx,
      line,
      written,
      'privileged',
      { kind: 'privileged' },
      `mount propagation ${prop} lets the container's mounts reach the host`,
    );
  }
  switch (type) {
    case 'bind':
    case 'glob': {
      if (source === undefined) return;
      const writes =
        fields.has('relabel') ||
        ['true', '1'].includes(fields.get('U') ?? fields.get('chown') ?? '');
      const ro = ['ro', 'readonly'].some((k) => ['true', '1'].includes(fields.get(k) ?? ''));
      const src = type === 'glob' ? source.replace(/\/[^/]*[*?[].*$/, '') || '/' : source;
      bindSource(ctx, line, written, src, ro && !writes ? 'ro' : 'rw', 'the mount source');
      return;
    }
    case 'volume':
      if (source !== undefined && source !== '') {
        if (source.includes('@@rick:')) {
          push(
            ctx,
            line,
            written,
            'unjudged',
            { kind: 'privileged' },
            'the volume name holds a host fact',
          );
        } else pushControl(ctx, line, written, namedVolume(ctx.names, source));
      }
      return;
    case 'image':
      if (source !== undefined) imageUse(ctx, line, written, source);
      return;
    case 'tmpfs':
    case 'ramfs':
    case 'devpts':
    case 'artifact':
      return;
    default:
      push(
        ctx,
        line,
        written,
        'unjudged',
        { kind: 'privileged' },
        `mount type ${type} is not known`,
      );
  }
}

function namespaceUse(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  namespace: string,
  value: string,
): void {
  for (const part of value.split(',')) {
    const mode = part.split(':')[0] ?? '';
    if (mode === 'host' || mode === 'ns') {
      push(
        ctx,
        line,
        written,
        'host-namespaces',
        { kind: 'namespaces', value: namespace },
        mode === 'ns' ? `joins the namespace at ${part.slice(3)}` : undefined,
      );
    }
  }
}

/** A `uid:gid`-style id part: a placeholder, a number or a name. */
function idUse(
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
      push(
        ctx,
        line,
        written,
        'unjudged',
        { kind: 'privileged' },
        `${m[1]}() where ${fact}() belongs`,
      );
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
  push(
    ctx,
    line,
    written,
    'host-groups',
    { kind: 'privileged' },
    `group ${JSON.stringify(value)} is looked up in the image, so no host can tell which group it grants: use gid("name")`,
  );
  return 'other';
}

/** `--user USER[:GROUP]`; returns whether it may be root. */
function userUse(ctx: UnitContext, line: UnitLine, written: string, value: string): boolean {
  // A placeholder holds colons of its own: split after it.
  const skip = value.startsWith('@@rick:') ? value.indexOf('@@', 2) + 2 : 0;
  const colon = skip > 1 ? value.indexOf(':', skip) : value.indexOf(':');
  const user = colon === -1 ? value : value.slice(0, colon);
  const group = colon === -1 ? undefined : value.slice(colon + 1);
  if (user === '') {
    push(ctx, line, written, 'run-as-non-root', { kind: 'users', value: 'root' });
    return true;
  }
  const root = idUse(ctx, line, written, 'users', user) === 'root';
  if (group !== undefined && group !== '') idUse(ctx, line, written, 'groups', group);
  return root;
}

function groupAddUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  if (value === 'keep-groups') {
    push(
      ctx,
      line,
      written,
      'host-groups',
      { kind: 'privileged' },
      "keep-groups hands the container every group of podman's own process",
    );
    return;
  }
  idUse(ctx, line, written, 'groups', value);
}

/** `[[IP:][HOSTPORT]:]CONTAINERPORT[/PROTOCOL]` / PublishPort=. */
export function publishedPort(value: string): string | undefined {
  const slash = value.lastIndexOf('/');
  const protocol = slash === -1 ? 'tcp' : value.slice(slash + 1);
  const spec = slash === -1 ? value : value.slice(0, slash);
  let address = '*';
  let rest = spec;
  if (spec.startsWith('[')) {
    const end = spec.indexOf(']');
    if (end === -1) return undefined;
    address = spec.slice(0, end + 1).toLowerCase();
    rest = spec.slice(end + 2);
    if (spec[end + 1] !== ':') return undefined;
  }
  const parts = rest.split(':');
  let hostPort: string;
  if (address !== '*') {
    if (parts.length !== 2) return undefined;
    hostPort = parts[0]!;
  } else if (parts.length === 3) {
    address = parts[0] === '' ? '*' : parts[0]!;
    hostPort = parts[1]!;
  } else if (parts.length === 2) {
    hostPort = parts[0]!;
  } else if (parts.length === 1) {
    // Only a container port: published on a random host port of every address.
    hostPort = '';
  } else return undefined;
  if (address === '0.0.0.0' || address === '[::]')
    address = address === '[::]' ? '[::]' : '0.0.0.0';
  const need = `${address}:${hostPort === '' ? '*' : hostPort}/${protocol}`;
  return parsePortNeed(need) ? need : undefined;
}

function portUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  const need = publishedPort(value);
  if (!need) {
    push(ctx, line, written, 'unjudged', { kind: 'privileged' }, 'a port mapping rick cannot read');
    return;
  }
  const p = parsePortNeed(need)!;
  if (p.address !== '*' && isLoopbackAddress(p.address)) return;
  push(ctx, line, written, 'host-ports', { kind: 'ports', value: need });
}

function isLoopbackAddress(address: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(address) || address === '[::1]';
}

function capabilityUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  const name = value.toUpperCase().replace(/^CAP_/, '');
  if (defaultCapabilities.has(name)) return;
  push(ctx, line, written, 'capabilities', { kind: 'capabilities', value: name });
}

function deviceUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  const source = value.replace(/^-/, '').split(':')[0] ?? '';
  const expanded = expandValue(source, ctx.service);
  if (expanded === undefined) {
    cannotTell(ctx, line, written, 'the device');
    return;
  }
  const path = posix.normalize(expanded);
  if (!path.startsWith('/dev/') || pathProblem(path)) {
    push(
      ctx,
      line,
      written,
      'devices',
      { kind: 'privileged' },
      `${expanded} is not a device under /dev`,
    );
    return;
  }
  push(ctx, line, written, 'devices', { kind: 'devices', value: path });
}

function sysctlUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  const name = value.split('=')[0] ?? '';
  if (safeSysctls.has(name)) return;
  if (!/^[a-z0-9_]+(\.[A-Za-z0-9_*-]+)+$/.test(name)) {
    push(
      ctx,
      line,
      written,
      'sysctls',
      { kind: 'privileged' },
      `${JSON.stringify(name)} is not a sysctl name`,
    );
    return;
  }
  push(ctx, line, written, 'sysctls', { kind: 'sysctls', value: name });
}

/** `--security-opt` values (also SecurityLabel*=, SeccompProfile=, Unmask=). */
function securityOptUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  const m = /^([a-z-]+)[=:]?(.*)$/.exec(value);
  const key = m?.[1] ?? '';
  const arg = m?.[2] ?? '';
  switch (key) {
    case 'label': {
      const [what = '', rest = ''] = arg.split(':');
      if (what === 'disable' || what === 'nested' || what === 'user' || what === 'role') {
        push(ctx, line, written, 'selinux', { kind: 'unconfined', value: 'selinux' });
      } else if (what === 'type' && !allowedSelinuxTypes.has(rest)) {
        push(
          ctx,
          line,
          written,
          'selinux',
          { kind: 'unconfined', value: 'selinux' },
          `type ${rest} is not a container type`,
        );
      } else if (!['type', 'level', 'filetype'].includes(what)) {
        push(
          ctx,
          line,
          written,
          'unjudged',
          { kind: 'privileged' },
          `label option ${what} is not known`,
        );
      }
      return;
    }
    case 'seccomp':
      if (arg === 'unconfined')
        push(ctx, line, written, 'seccomp', { kind: 'unconfined', value: 'seccomp' });
      return;
    case 'apparmor':
      if (arg === 'unconfined')
        push(ctx, line, written, 'apparmor', { kind: 'unconfined', value: 'apparmor' });
      return;
    case 'unmask':
      push(ctx, line, written, 'proc-mount', { kind: 'unconfined', value: 'proc' });
      return;
    case 'systempaths':
      if (arg === 'unconfined')
        push(ctx, line, written, 'proc-mount', { kind: 'unconfined', value: 'proc' });
      return;
    case 'mask':
    case 'no-new-privileges':
    case 'proc-opts':
      return;
    default:
      push(
        ctx,
        line,
        written,
        'unjudged',
        { kind: 'privileged' },
        `security option ${JSON.stringify(key)} is not known`,
      );
  }
}

/** `--uidmap`/`--gidmap CONTAINER:HOST:SIZE`: a range holding host id 0 maps host root in. */
function idMapUse(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  value: string,
  kind: 'users' | 'groups',
): void {
  const m = /^[+@]?(\d+):[+@]?(\d+):(\d+)$/.exec(value);
  if (!m) {
    push(ctx, line, written, 'unjudged', { kind: 'privileged' }, 'an id mapping rick cannot read');
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

const hostFileFlags: Record<string, 'ro' | 'rw'> = {
  'env-file': 'ro',
  'init-path': 'ro',
  'hosts-file': 'ro',
  'label-file': 'ro',
  cidfile: 'rw',
  'conmon-pidfile': 'rw',
  pidfile: 'rw',
  'pod-id-file': 'rw',
  'infra-conmon-pidfile': 'rw',
};

const privilegedFlags: Record<string, string> = {
  privileged: 'turns off every confinement',
  'volumes-from': "takes another container's mounts, which rick cannot see",
  'device-cgroup-rule': 'allows device nodes by number',
  gpus: 'hands over the host GPUs',
  'cgroup-parent': 'places the container in any part of the host cgroup tree',
  rootfs: 'runs a host directory as the root file system',
};

interface FlagState {
  /** The last --user value seen (what podman keeps), with its line. */
  user?: { value: string; line: UnitLine; written: string };
  usernsAuto: boolean;
}

/** Flags whose value rick judges; every other known flag touches nothing of the host. */
const judgedFlags = new Set([
  'cap-add',
  'device',
  'network',
  'pid',
  'ipc',
  'uts',
  'cgroupns',
  'userns',
  'volume',
  'mount',
  'user',
  'group-add',
  'publish',
  'publish-all',
  'security-opt',
  'seccomp-policy',
  'sysctl',
  'uidmap',
  'gidmap',
  'log-opt',
  'health-log-destination',
  'annotation',
  'pod',
  'secret',
  'infra-image',
]);

/** Judges one podman flag of `podman run` or `podman pod create`. */
function judgeFlag(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  flag: ParsedFlag,
  state: FlagState,
): void {
  const name = flag.name === 'net' ? 'network' : flag.name;
  if (!judgedFlags.has(name) && !(name in privilegedFlags) && !(name in hostFileFlags)) return;
  const at = written;
  for (const raw of flag.values) {
    const value = expandValue(raw, ctx.service);
    if (value === undefined) {
      cannotTell(ctx, line, at, `the value of --${name}`);
      continue;
    }
    const v = value;
    if (name in privilegedFlags) {
      if (v !== 'false')
        push(ctx, line, at, 'privileged', { kind: 'privileged' }, privilegedFlags[name]);
      continue;
    }
    if (name in hostFileFlags) {
      const placeholder = placeholderOnly.exec(raw);
      if (placeholder?.[1] === 'path' && hostFileFlags[name] === 'ro') continue;
      const path = v.startsWith('/') ? hostPath(ctx, v) : undefined;
      if (!path) {
        push(
          ctx,
          line,
          at,
          'host-paths',
          { kind: 'privileged' },
          `--${name} ${v} is not an absolute host path`,
        );
        continue;
      }
      pathUse(
        ctx,
        line,
        at,
        path,
        hostFileFlags[name]!,
        `--${name} ${hostFileFlags[name] === 'rw' ? 'writes' : 'reads'} a host file`,
      );
      continue;
    }
    switch (name) {
      case 'cap-add':
        capabilityUse(ctx, line, at, v);
        break;
      case 'device':
        deviceUse(ctx, line, at, raw);
        break;
      case 'network':
        namespaceUse(ctx, line, at, 'network', v);
        pushControl(ctx, line, at, joinedContainer(ctx.names, 'network', v, false));
        break;
      case 'pid':
      case 'ipc':
      case 'uts':
      case 'cgroupns':
        namespaceUse(ctx, line, at, name === 'cgroupns' ? 'cgroup' : name, v);
        pushControl(ctx, line, at, joinedContainer(ctx.names, name, v, false));
        break;
      case 'userns':
        namespaceUse(ctx, line, at, 'user', v);
        pushControl(ctx, line, at, joinedContainer(ctx.names, 'user', v, false));
        if (v.startsWith('auto')) state.usernsAuto = true;
        break;
      case 'pod':
        pushControl(ctx, line, at, joinedPod(ctx.names, v));
        break;
      case 'secret':
        pushControl(ctx, line, at, secretUse(v));
        break;
      case 'infra-image':
        imageUse(ctx, line, at, raw);
        break;
      case 'volume':
        volumeUse(ctx, line, at, raw.includes('@@rick:') ? raw : v);
        break;
      case 'mount':
        mountUse(ctx, line, at, raw.includes('@@rick:') ? raw : v);
        break;
      case 'user':
        state.user = { value: raw, line, written: at };
        break;
      case 'group-add':
        groupAddUse(ctx, line, at, raw);
        break;
      case 'publish':
        portUse(ctx, line, at, v);
        break;
      case 'publish-all':
        if (v !== 'false') {
          push(
            ctx,
            line,
            at,
            'host-ports',
            { kind: 'ports', value: '*:*/tcp' },
            'publishes every exposed port on every address',
          );
          push(
            ctx,
            line,
            at,
            'host-ports',
            { kind: 'ports', value: '*:*/udp' },
            'publishes every exposed port on every address',
          );
        }
        break;
      case 'security-opt':
        securityOptUse(ctx, line, at, v);
        break;
      case 'seccomp-policy':
        if (v === 'image') {
          push(
            ctx,
            line,
            at,
            'seccomp',
            { kind: 'unconfined', value: 'seccomp' },
            "takes the seccomp profile from the image's annotations",
          );
        }
        break;
      case 'sysctl':
        sysctlUse(ctx, line, at, v);
        break;
      case 'uidmap':
        idMapUse(ctx, line, at, v, 'users');
        break;
      case 'gidmap':
        idMapUse(ctx, line, at, v, 'groups');
        break;
      case 'log-opt':
        if (v.startsWith('path=')) {
          const path = hostPath(ctx, v.slice(5));
          if (!path || !v.slice(5).startsWith('/')) {
            push(
              ctx,
              line,
              at,
              'host-paths',
              { kind: 'privileged' },
              'the log path is not an absolute host path',
            );
          } else pathUse(ctx, line, at, path, 'rw', 'the log file is written on the host');
        }
        break;
      case 'health-log-destination':
        if (v.startsWith('/')) {
          const path = hostPath(ctx, v);
          if (path) pathUse(ctx, line, at, path, 'rw', 'health logs are written on the host');
          else push(ctx, line, at, 'host-paths', { kind: 'privileged' }, 'not a plain host path');
        }
        break;
      case 'annotation':
        if (/^(run\.oci\.|io\.podman\.annotations\.)/.test(v)) {
          push(
            ctx,
            line,
            at,
            'privileged',
            { kind: 'privileged' },
            'a runtime annotation changes how the container is confined',
          );
        }
        break;
      default:
        break;
    }
  }
}

function judgeFlags(
  ctx: UnitContext,
  line: UnitLine,
  key: string,
  table: Readonly<Record<string, FlagSpec>>,
  state: FlagState,
): void {
  const split = splitArgs(line.value);
  const written = `${key}=${line.value}`;
  for (const problem of split.problems) {
    push(ctx, line, written, 'unknown-flags', { kind: 'privileged' }, problem);
  }
  const words: string[] = [];
  for (const word of split.words) {
    if (word.includes('$') && !/^[^$]*(\$\$[^$]*)*$/.test(word)) {
      push(
        ctx,
        line,
        written,
        'unjudged',
        { kind: 'privileged' },
        `${JSON.stringify(word)} is expanded from the environment when the unit starts`,
      );
      return;
    }
    words.push(word);
  }
  const parsed = parsePodmanFlags(words, table);
  for (const problem of parsed.problems) {
    push(ctx, line, written, 'unknown-flags', { kind: 'privileged' }, problem);
  }
  for (const flag of parsed.flags) judgeFlag(ctx, line, `${key}: ${flag.written}`, flag, state);
}

/** The flag a key maps to, as quadlet adds it. */
function asFlag(name: string, value: string, spec: FlagSpec | undefined): ParsedFlag {
  const values = spec?.type === 'slice' ? value.split(',') : [value];
  return { name, values, written: `--${name} ${value}` };
}

function unknownKeys(ctx: UnitContext, group: string, known: ReadonlySet<string>): void {
  for (const line of ctx.unit.groups.get(group) ?? []) {
    if (!known.has(line.key)) {
      push(
        ctx,
        line,
        `${line.key}=${line.value}`,
        'unknown-flags',
        { kind: 'privileged' },
        `[${group}] ${line.key}= is not a key rick knows`,
      );
    }
  }
}

function serviceSection(ctx: UnitContext): void {
  for (const line of ctx.unit.groups.get('Service') ?? []) {
    if (serviceAllowed.has(line.key)) continue;
    push(
      ctx,
      line,
      `${line.key}=${line.value}`,
      'service-directives',
      { kind: 'service', value: line.key },
      line.key.startsWith('Exec')
        ? 'runs a command on the host, as root, outside the container'
        : 'acts on the host outside the container',
    );
  }
}

/** Checks of a key that is not one podman flag, by the name the kind table gives them. */
type KeyCheck = (ctx: UnitContext, use: KindUse) => void;

/** What a key check reads beyond the unit: its kind's group, the flag state, the kind's flag mapping. */
interface KindUse {
  group: string;
  key: string;
  state: FlagState;
  flag: (line: UnitLine, key: string, name: string, value: string) => void;
}

const keyChecks: Record<KeyCheckName, KeyCheck> = {
  'containers-conf-module': (ctx, { group }) => {
    for (const line of lookupAll(ctx.unit, group, 'ContainersConfModule')) {
      push(
        ctx,
        line,
        `ContainersConfModule=${line.value}`,
        'privileged',
        { kind: 'privileged' },
        "a containers.conf module can change every default of podman's",
      );
    }
  },
  'global-args': (ctx, { group }) => {
    for (const line of lookupAll(ctx.unit, group, 'GlobalArgs')) {
      const words = splitArgs(line.value);
      const harmless =
        words.problems.length === 0 &&
        words.words.every(
          (w, i, all) => /^--log-level(=|$)/.test(w) || (i > 0 && all[i - 1] === '--log-level'),
        );
      if (!harmless) {
        push(
          ctx,
          line,
          `GlobalArgs=${line.value}`,
          'privileged',
          { kind: 'privileged' },
          "global flags choose podman's storage, runtime and hooks",
        );
      }
    }
  },
  pod: (ctx, { group }) => {
    const pod = lookupLast(ctx.unit, group, 'Pod');
    if (pod && pod.value !== '')
      pushControl(ctx, pod, `Pod=${pod.value}`, joinedPod(ctx.names, pod.value));
  },
  image: (ctx, { group }) => {
    const image = lookupLast(ctx.unit, group, 'Image');
    if (image && image.value !== '') imageUse(ctx, image, `Image=${image.value}`, image.value);
  },
  'remap-users': (ctx, { group, state }) => {
    if (lookupLast(ctx.unit, group, 'RemapUsers')?.value === 'auto') state.usernsAuto = true;
  },
  rootfs: (ctx, { group }) => {
    const rootfs = lookupLast(ctx.unit, group, 'Rootfs');
    if (rootfs && rootfs.value !== '') {
      bindSource(ctx, rootfs, `Rootfs=${rootfs.value}`, rootfs.value, 'rw', 'the root file system');
    }
  },
  user: (ctx, { group, state }) => {
    const user = lookupLast(ctx.unit, group, 'User');
    const grp = lookupLast(ctx.unit, group, 'Group');
    if (user && user.value !== '') {
      state.user = {
        value: grp && grp.value !== '' ? `${user.value}:${grp.value}` : user.value,
        line: user,
        written: `User=${user.value}${grp && grp.value !== '' ? ` Group=${grp.value}` : ''}`,
      };
    }
  },
  'volume-name': (ctx, { group }) => {
    const named = lookupLast(ctx.unit, group, 'VolumeName');
    if (named && named.value !== '')
      pushControl(
        ctx,
        named,
        `VolumeName=${named.value}`,
        volumeName(ctx.input.bundle, ctx.unit.name, named.value),
      );
  },
  'volume-device': (ctx, { group }) => {
    const u = ctx.unit;
    const device = lookupLast(u, group, 'Device');
    if (!device || device.value === '') return;
    const type = lookupLast(u, group, 'Type')?.value ?? '';
    const options = (lookupLast(u, group, 'Options')?.value ?? '').split(',');
    const bind = type === 'bind' || options.includes('bind') || options.includes('rbind');
    const written = `Device=${device.value}`;
    if (device.value.startsWith('/dev/') && !bind) {
      deviceUse(ctx, device, written, device.value);
    } else if (device.value.startsWith('/') || device.value.startsWith('.')) {
      bindSource(
        ctx,
        device,
        written,
        device.value,
        options.includes('ro') ? 'ro' : 'rw',
        'the volume device',
      );
    }
  },
  'network-driver': (ctx, { group }) => {
    const driver = lookupLast(ctx.unit, group, 'Driver');
    if (driver && ['macvlan', 'ipvlan'].includes(driver.value)) {
      push(
        ctx,
        driver,
        `Driver=${driver.value}`,
        'host-namespaces',
        { kind: 'namespaces', value: 'network' },
        "attaches containers to the host's own interfaces",
      );
    }
  },
};

const lineChecks: Record<LineCheckName, (ctx: UnitContext, line: UnitLine) => void> = {
  // quadlet's own form, which it turns into container:<that unit's container>.
  'quadlet-network-container': (ctx, line) => {
    if (line.value.endsWith('.container'))
      pushControl(
        ctx,
        line,
        `Network=${line.value}`,
        joinedContainer(ctx.names, 'network', line.value, true),
      );
  },
};

const finalChecks: Record<FinalCheckName, (ctx: UnitContext, use: KindUse) => void> = {
  'run-as-non-root': (ctx, { group, state }) => {
    if (state.user) {
      userUse(ctx, state.user.line, state.user.written, state.user.value);
    } else if (!state.usernsAuto) {
      const anchor = (ctx.unit.groups.get(group) ?? [])[0] ?? {
        key: '',
        value: '',
        source: `${ctx.unit.name}:1`,
      };
      push(
        ctx,
        anchor,
        '(no User=)',
        'run-as-non-root',
        { kind: 'users', value: 'root' },
        "without User= the container runs as the image's user, root unless the image says otherwise",
      );
    }
  },
};

/** The lines of a key quadlet turns into a flag, each with the values of the flags it gives. */
function flagKeyValues(ctx: UnitContext, group: string, use: FlagKey): [UnitLine, string[]][] {
  const u = ctx.unit;
  if (use.when && lookupLast(u, group, use.when.key)?.value !== use.when.value) return [];
  let lines: UnitLine[];
  if (use.lines === 'all') lines = lookupAll(u, group, use.key);
  else if (use.lines === 'true') {
    lines = lookupBoolean(u, group, use.key) ? [lookupLast(u, group, use.key)!] : [];
  } else {
    const last = lookupLast(u, group, use.key);
    lines = last && (last.value !== '' || use.lines === 'last-even-empty') ? [last] : [];
  }
  return lines.map((line) => {
    const words =
      use.words === 'strv'
        ? splitStrv(line.value).words
        : use.words === 'args'
          ? splitArgs(line.value).words
          : [line.value];
    return [
      line,
      words.map((w) => {
        if (use.fixed !== undefined) return use.fixed;
        if (use.relative && !(w.startsWith('/') || w.startsWith('@@')))
          return posix.join(unitDir(ctx.input.bundle), w);
        return `${use.prefix ?? ''}${w}`;
      }),
    ];
  });
}

/** Judges a Quadlet unit of one kind: its keys, in the kind table's order, then its final checks. */
function judgeKind(ctx: UnitContext, kind: QuadletKind): void {
  const group = kind.group;
  unknownKeys(ctx, group, kind.known);
  const state: FlagState = { usernsAuto: false };
  const flag = (line: UnitLine, key: string, name: string, value: string) =>
    judgeFlag(ctx, line, `${key}=${line.value}`, asFlag(name, value, kind.flags[name]), state);
  for (const use of kind.uses) {
    const kindUse: KindUse = { group, key: use.key, state, flag };
    if ('podmanArgs' in use) {
      for (const line of lookupAll(ctx.unit, group, use.key))
        judgeFlags(ctx, line, use.key, kind.flags, state);
    } else if ('check' in use) {
      keyChecks[use.check](ctx, kindUse);
    } else {
      for (const [line, values] of flagKeyValues(ctx, group, use)) {
        for (const value of values) flag(line, use.key, use.flag, value);
        if (use.afterFlag) lineChecks[use.afterFlag](ctx, line);
      }
    }
  }
  for (const check of kind.final ?? []) finalChecks[check](ctx, { group, key: '', state, flag });
}

/** The generated service's name without `.service`, as quadlet derives it. */
function serviceBase(unit: UnitFile): string {
  const type = unitTypeOf(unit.name)!;
  const group = type[0]!.toUpperCase() + type.slice(1);
  const named = lookupLast(unit, group, 'ServiceName');
  if (named && named.value !== '') return named.value;
  const base = unit.name.slice(0, unit.name.lastIndexOf('.'));
  return type === 'container' || type === 'kube' ? base : `${base}-${type}`;
}

/** Judges every unit of a bundle against `restricted`. */
export function judgeUnits(input: JudgeInput): Judgement {
  const { units, problems } = readQuadletUnits(input.files);
  const findings: Finding[] = [];
  const accounts = { users: new Set<string>(), groups: new Set<string>() };
  for (const problem of problems) {
    findings.push({
      rule: 'unjudged',
      unit: problem.source.split(':')[0] ?? '',
      source: problem.source,
      written: problem.message,
      need: { kind: 'privileged' },
      detail: 'quadlet cannot read this line',
    });
  }
  const names = bundleNames(input.bundle, units, (input.plainUnits ?? new Map()).keys());
  for (const unit of units) {
    const ctx: UnitContext = {
      unit,
      input,
      findings,
      accounts,
      service: serviceBase(unit),
      names,
    };
    serviceSection(ctx);
    for (const c of judgeUnitReferences(
      { name: unit.name, names, expand: (value) => expandValue(value, ctx.service) },
      unit.groups,
    ))
      push(ctx, c.line, c.written, c.rule, c.need, c.detail);
    const type = unitTypeOf(unit.name);
    switch (type) {
      case 'container':
      case 'pod':
      case 'volume':
      case 'network':
      case 'image':
        judgeKind(ctx, quadletKinds[type]);
        break;
      default: {
        const first = [...unit.groups.values()].flat()[0] ?? {
          key: '',
          value: '',
          source: `${unit.name}:1`,
        };
        push(
          ctx,
          first,
          unit.name,
          'unjudged',
          { kind: 'privileged' },
          'rick does not judge what a .kube or .build unit does on the host',
        );
      }
    }
  }
  for (const [name, text] of [...(input.plainUnits ?? new Map<string, string>())].sort()) {
    judgePlainUnit(name, text, findings, input, names);
  }
  return { findings, accounts };
}

/** The sections of a plain unit whose `Exec*=` lines systemd runs on the host. */
const hostCommandSections = ['Service', 'Socket'];

/**
 * A plain systemd unit runs on the host, outside any container: each kind of
 * `Exec*=` line it has (ExecStart, ExecStartPre, …, a socket's ExecStartPre)
 * is a host command, as root unless the unit says otherwise, and needs the
 * grant of that directive, as a Quadlet unit's host-side directive does.
 */
function judgePlainUnit(
  name: string,
  text: string,
  findings: Finding[],
  input: JudgeInput,
  names: BundleNames,
): void {
  const { groups, problems } = parseUnitFile(text, name);
  const lineControls = (controls: readonly LineControl[]) => {
    for (const c of controls) {
      findings.push({
        rule: c.rule,
        unit: name,
        source: c.line.source,
        written: c.written,
        need: c.need,
        ...(c.detail === undefined ? {} : { detail: c.detail }),
      });
    }
  };
  const base = name.slice(0, name.lastIndexOf('.'));
  lineControls(
    judgeUnitReferences({ name, names, expand: (value) => expandValue(value, base) }, groups),
  );
  if (name.endsWith('.socket')) {
    lineControls(
      judgeSocket(
        {
          name,
          names,
          ownUsers: input.ownUsers,
          ownGroups: input.ownGroups,
          expand: (value) => expandValue(value, base),
        },
        groups.get('Socket') ?? [],
      ),
    );
  }
  for (const problem of problems) {
    findings.push({
      rule: 'unjudged',
      unit: name,
      source: problem.source,
      written: problem.message,
      need: { kind: 'privileged' },
      detail: 'systemd cannot read this line',
    });
  }
  for (const section of hostCommandSections) {
    for (const line of groups.get(section) ?? []) {
      if (!line.key.startsWith('Exec') || line.value === '') continue;
      findings.push({
        rule: 'host-commands',
        unit: name,
        source: line.source,
        written: `${line.key}=${line.value}`,
        need: { kind: 'service', value: line.key },
        detail: 'a plain unit runs this command on the host, outside any container',
      });
    }
  }
}

/** `authentik-server.container:17 Volume=/srv:/srv: path /srv:rw (rule host-paths)`. */
export function formatFinding(f: Finding): string {
  return `${f.source} ${f.written}${f.detail ? ` (${f.detail})` : ''} [${f.rule}]`;
}
