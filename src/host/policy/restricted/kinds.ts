/**
 * Which keys and flags each Quadlet kind has, as data: the keys quadlet
 * knows in its group (any other is the `unknown-flags` rule), the flags of
 * the podman command it runs (what `PodmanArgs=` may hold), and, in the
 * order they are judged, the keys that reach the host, each either mapped
 * to the podman flag quadlet gives it (then judged as that flag is, so a key
 * and its `PodmanArgs=` flag are judged alike) or read by a named key check
 * of a rule. The walk over this table is src/host/policy/restricted.ts; the
 * order of the entries is the order of the findings.
 */
import {
  type FlagSpec,
  podmanPodCreateFlags,
  podmanRunFlags,
} from '../../../bundle/podman-args.js';

/** The Quadlet kinds the profile judges; `.kube` and `.build` are `unjudged`. */
export type QuadletKindName = 'container' | 'pod' | 'volume' | 'network' | 'image';

/** Checks of a key that is not one podman flag, by name (a rule module registers each). */
export type KeyCheckName =
  | 'containers-conf-module'
  | 'global-args'
  | 'pod'
  | 'image'
  | 'remap-users'
  | 'rootfs'
  | 'user'
  | 'volume-name'
  | 'volume-device'
  | 'network-driver';

/** Checks of one line of a key, run after the flag it maps to. */
export type LineCheckName = 'quadlet-network-container';

/** Checks run once a kind's keys and flags have all been read. */
export type FinalCheckName = 'run-as-non-root';

/** A key quadlet turns into a podman flag. */
export interface FlagKey {
  key: string;
  /** The flag's long name. */
  flag: string;
  /**
   * `all`: every line (quadlet's LookupAll); `last`: the last one, skipped
   * when empty (LookupLast); `last-even-empty`: the last one, also empty;
   * `true`: the last one, when it is a true boolean (LookupBoolean).
   */
  lines: 'all' | 'last' | 'last-even-empty' | 'true';
  /** How a line splits into flags: `strv` (systemd's list), `args` (quoted words); else one flag. */
  words?: 'strv' | 'args';
  /** Written before the value, as quadlet writes it (`unmask=`, `label=type:`). */
  prefix?: string;
  /** The flag's value whatever the key's (`label=disable` for `SecurityLabelDisable=true`). */
  fixed?: string;
  /** A relative path is resolved from the unit's directory, as quadlet does. */
  relative?: true;
  /** Read only when another key's last value is this. */
  when?: { key: string; value: string };
  /** A check of each line after its flag. */
  afterFlag?: LineCheckName;
}

/** A key read by a rule's own check (its value is not one podman flag). */
export interface CheckedKey {
  key: string;
  check: KeyCheckName;
}

/** `PodmanArgs=`: podman flags as written, read against the kind's flag table. */
export interface PodmanArgsKey {
  key: 'PodmanArgs';
  podmanArgs: true;
}

export type KeyUse = FlagKey | CheckedKey | PodmanArgsKey;

export interface QuadletKind {
  /** The unit's group, `[Container]`. */
  group: string;
  /** Every key of the group quadlet knows and rick has read. */
  known: ReadonlySet<string>;
  /** The flags of the podman command quadlet runs for this kind. */
  flags: Readonly<Record<string, FlagSpec>>;
  /** The keys that reach the host, in the order they are judged. */
  uses: readonly KeyUse[];
  /** Checks once every key is read. */
  final?: readonly FinalCheckName[];
}

/** The keys that change podman itself (its configuration, storage, runtime): every kind has them. */
const podmanItself: readonly KeyUse[] = [
  { key: 'ContainersConfModule', check: 'containers-conf-module' },
  { key: 'GlobalArgs', check: 'global-args' },
];

const podmanArgs: PodmanArgsKey = { key: 'PodmanArgs', podmanArgs: true };

const containerKeys = new Set([
  'AddCapability',
  'AddDevice',
  'AddHost',
  'Annotation',
  'AutoUpdate',
  'CgroupsMode',
  'ContainerName',
  'ContainersConfModule',
  'DNS',
  'DNSOption',
  'DNSSearch',
  'DropCapability',
  'Environment',
  'EnvironmentFile',
  'EnvironmentHost',
  'Entrypoint',
  'Exec',
  'ExposeHostPort',
  'GIDMap',
  'GlobalArgs',
  'Group',
  'GroupAdd',
  'HealthCmd',
  'HealthInterval',
  'HealthOnFailure',
  'HealthLogDestination',
  'HealthMaxLogCount',
  'HealthMaxLogSize',
  'HealthRetries',
  'HealthStartPeriod',
  'HealthStartupCmd',
  'HealthStartupInterval',
  'HealthStartupRetries',
  'HealthStartupSuccess',
  'HealthStartupTimeout',
  'HealthTimeout',
  'HostName',
  'IP6',
  'IP',
  'Image',
  'Label',
  'LogDriver',
  'LogOpt',
  'Mask',
  'Mount',
  'Network',
  'NetworkAlias',
  'NoNewPrivileges',
  'Notify',
  'PidsLimit',
  'Pod',
  'PodmanArgs',
  'PublishPort',
  'Pull',
  'ReadOnly',
  'ReadOnlyTmpfs',
  'RemapGid',
  'RemapUid',
  'RemapUidSize',
  'RemapUsers',
  'Rootfs',
  'RunInit',
  'SeccompProfile',
  'Secret',
  'SecurityLabelDisable',
  'SecurityLabelFileType',
  'SecurityLabelLevel',
  'SecurityLabelNested',
  'SecurityLabelType',
  'ServiceName',
  'ShmSize',
  'StopSignal',
  'StartWithPod',
  'StopTimeout',
  'SubGIDMap',
  'SubUIDMap',
  'Sysctl',
  'Timezone',
  'Tmpfs',
  'UIDMap',
  'Ulimit',
  'Unmask',
  'User',
  'UserNS',
  'VolatileTmp',
  'Volume',
  'WorkingDir',
]);

const podKeys = new Set([
  'AddHost',
  'ContainersConfModule',
  'DNS',
  'DNSOption',
  'DNSSearch',
  'GIDMap',
  'GlobalArgs',
  'IP',
  'IP6',
  'Network',
  'NetworkAlias',
  'PodName',
  'PodmanArgs',
  'PublishPort',
  'RemapGid',
  'RemapUid',
  'RemapUidSize',
  'RemapUsers',
  'ServiceName',
  'ShmSize',
  'SubGIDMap',
  'SubUIDMap',
  'UIDMap',
  'UserNS',
  'Volume',
]);

const volumeKeys = new Set([
  'ContainersConfModule',
  'Copy',
  'Device',
  'Driver',
  'GlobalArgs',
  'Group',
  'Image',
  'Label',
  'Options',
  'PodmanArgs',
  'ServiceName',
  'Type',
  'User',
  'VolumeName',
]);

const networkKeys = new Set([
  'Label',
  'DNS',
  'ContainersConfModule',
  'GlobalArgs',
  'DisableDNS',
  'Driver',
  'Gateway',
  'IPAMDriver',
  'IPRange',
  'IPv6',
  'Internal',
  'NetworkName',
  'Options',
  'ServiceName',
  'Subnet',
  'PodmanArgs',
]);

const imageKeys = new Set([
  'AllTags',
  'Arch',
  'AuthFile',
  'CertDir',
  'ContainersConfModule',
  'Creds',
  'DecryptionKey',
  'GlobalArgs',
  'Image',
  'ImageTag',
  'OS',
  'PodmanArgs',
  'ServiceName',
  'TLSVerify',
  'Variant',
]);

/** Flags of `podman volume create`, `network create` and `image pull` that touch nothing of the host. */
const volumeCreateFlags: Record<string, FlagSpec> = {
  label: { type: 'array', short: 'l' },
  ignore: { type: 'bool' },
};
const networkCreateFlags: Record<string, FlagSpec> = {
  label: { type: 'array' },
  ignore: { type: 'bool' },
  internal: { type: 'bool' },
  ipv6: { type: 'bool' },
  'disable-dns': { type: 'bool' },
  dns: { type: 'slice' },
  subnet: { type: 'array' },
  gateway: { type: 'array' },
  'ip-range': { type: 'array' },
  route: { type: 'array' },
  'ipam-driver': { type: 'string' },
};
const imagePullFlags: Record<string, FlagSpec> = {
  arch: { type: 'string' },
  os: { type: 'string' },
  variant: { type: 'string' },
  platform: { type: 'string' },
  'all-tags': { type: 'bool', short: 'a' },
  authfile: { type: 'string' },
  'cert-dir': { type: 'string' },
  creds: { type: 'string' },
  'decryption-key': { type: 'array' },
  'disable-content-trust': { type: 'bool' },
  quiet: { type: 'bool', short: 'q' },
  retry: { type: 'string' },
  'retry-delay': { type: 'string' },
  'tls-verify': { type: 'bool' },
  policy: { type: 'string' },
};

export const quadletKinds: Readonly<Record<QuadletKindName, QuadletKind>> = {
  container: {
    group: 'Container',
    known: containerKeys,
    flags: podmanRunFlags,
    uses: [
      ...podmanItself,
      { key: 'AddCapability', flag: 'cap-add', lines: 'all', words: 'strv' },
      { key: 'AddDevice', flag: 'device', lines: 'all', words: 'strv' },
      { key: 'Sysctl', flag: 'sysctl', lines: 'all', words: 'strv' },
      { key: 'LogOpt', flag: 'log-opt', lines: 'all', words: 'strv' },
      { key: 'UIDMap', flag: 'uidmap', lines: 'all', words: 'strv' },
      { key: 'GIDMap', flag: 'gidmap', lines: 'all', words: 'strv' },
      // `Network=NAME.container` is quadlet's own form of container:NAME.
      { key: 'Network', flag: 'network', lines: 'all', afterFlag: 'quadlet-network-container' },
      { key: 'Pod', check: 'pod' },
      { key: 'Secret', flag: 'secret', lines: 'all' },
      { key: 'Image', check: 'image' },
      { key: 'Volume', flag: 'volume', lines: 'all' },
      { key: 'GroupAdd', flag: 'group-add', lines: 'all' },
      { key: 'PublishPort', flag: 'publish', lines: 'all' },
      { key: 'Mount', flag: 'mount', lines: 'all', words: 'args' },
      { key: 'EnvironmentFile', flag: 'env-file', lines: 'all', words: 'args', relative: true },
      { key: 'Unmask', flag: 'security-opt', lines: 'all', words: 'args', prefix: 'unmask=' },
      { key: 'Annotation', flag: 'annotation', lines: 'all', words: 'args' },
      { key: 'UserNS', flag: 'userns', lines: 'last' },
      { key: 'RemapUsers', check: 'remap-users' },
      {
        key: 'RemapUid',
        flag: 'uidmap',
        lines: 'all',
        words: 'strv',
        when: { key: 'RemapUsers', value: 'manual' },
      },
      {
        key: 'RemapGid',
        flag: 'gidmap',
        lines: 'all',
        words: 'strv',
        when: { key: 'RemapUsers', value: 'manual' },
      },
      { key: 'SecurityLabelDisable', flag: 'security-opt', lines: 'true', fixed: 'label=disable' },
      { key: 'SecurityLabelNested', flag: 'security-opt', lines: 'true', fixed: 'label=nested' },
      { key: 'SecurityLabelType', flag: 'security-opt', lines: 'last', prefix: 'label=type:' },
      { key: 'SeccompProfile', flag: 'security-opt', lines: 'last-even-empty', prefix: 'seccomp=' },
      { key: 'Rootfs', check: 'rootfs' },
      { key: 'HealthLogDestination', flag: 'health-log-destination', lines: 'last' },
      { key: 'User', check: 'user' },
      podmanArgs,
    ],
    final: ['run-as-non-root'],
  },
  pod: {
    group: 'Pod',
    known: podKeys,
    flags: podmanPodCreateFlags,
    uses: [
      ...podmanItself,
      { key: 'Network', flag: 'network', lines: 'all' },
      { key: 'Volume', flag: 'volume', lines: 'all' },
      { key: 'PublishPort', flag: 'publish', lines: 'all' },
      { key: 'UIDMap', flag: 'uidmap', lines: 'all', words: 'strv' },
      { key: 'GIDMap', flag: 'gidmap', lines: 'all', words: 'strv' },
      { key: 'UserNS', flag: 'userns', lines: 'last' },
      podmanArgs,
    ],
  },
  volume: {
    group: 'Volume',
    known: volumeKeys,
    flags: volumeCreateFlags,
    uses: [
      ...podmanItself,
      podmanArgs,
      { key: 'VolumeName', check: 'volume-name' },
      { key: 'Image', check: 'image' },
      { key: 'Device', check: 'volume-device' },
    ],
  },
  network: {
    group: 'Network',
    known: networkKeys,
    flags: networkCreateFlags,
    uses: [...podmanItself, { key: 'Driver', check: 'network-driver' }, podmanArgs],
  },
  image: {
    group: 'Image',
    known: imageKeys,
    flags: imagePullFlags,
    uses: [...podmanItself, podmanArgs, { key: 'Image', check: 'image' }],
  },
};
