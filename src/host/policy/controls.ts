/**
 * Small pure checks, one per control, for what a unit names beyond its own
 * container: another bundle's containers and pods, podman secrets, named
 * volumes, image sources on the host. Each takes one value as podman or
 * quadlet will read it and says what it needs, or nothing when it stays
 * within the bundle. The per-kind judges (restricted.ts) call them where the
 * value appears, so a Quadlet key and the `PodmanArgs=` flag it maps to are
 * judged alike.
 */
import type { Need } from '../../bundle/needs.js';
import { type BundleNames, isBundlePrefixed } from './bundle-names.js';

/** What one use needs, with the rule that names it in refusals. */
export interface Control {
  rule: ControlRule;
  need: Need;
  detail?: string;
}

export const controlRules = [
  'shared-namespaces',
  'secrets',
  'volumes',
  'image-sources',
  'sockets',
  'unit-references',
] as const;
export type ControlRule = (typeof controlRules)[number];

/**
 * `--network/--pid/--ipc/--uts/--userns container:NAME` (and quadlet's
 * `Network=NAME.container`): the container shares that container's
 * namespace, which only a container of the same bundle may be.
 */
export function joinedContainer(
  names: BundleNames,
  namespace: string,
  value: string,
  quadletKey: boolean,
): Control | undefined {
  let target: string | undefined;
  if (value.startsWith('container:')) target = value.slice('container:'.length);
  else if (quadletKey && value.endsWith('.container')) target = value;
  if (target === undefined || names.containers.has(target)) return undefined;
  return {
    rule: 'shared-namespaces',
    need: { kind: 'privileged' },
    detail: `joins the ${namespace} namespace of container ${target}, which is not one of ${names.bundle}'s`,
  };
}

/** `--pod NAME` / `Pod=NAME.pod`: only a pod of the same bundle (`new:NAME` makes one). */
export function joinedPod(names: BundleNames, value: string): Control | undefined {
  if (value === '' || value.startsWith('new:') || names.pods.has(value)) return undefined;
  return {
    rule: 'shared-namespaces',
    need: { kind: 'privileged' },
    detail: `joins pod ${value}, which is not one of ${names.bundle}'s`,
  };
}

/**
 * `Secret=` / `--secret NAME[,opt=…]`: rick creates no podman secret (a
 * bundle's own secrets are host facts, `secret()`), so each one is another
 * service's or the host's and needs a grant naming it.
 */
export function secretUse(value: string): Control {
  const fields = value.split(',');
  const source =
    fields.find((f) => f.startsWith('source='))?.slice('source='.length) ??
    fields.find((f) => !f.includes('=')) ??
    '';
  return {
    rule: 'secrets',
    need: source === '' ? { kind: 'privileged' } : { kind: 'secrets', value: source },
    detail:
      source === ''
        ? 'a secret without a name'
        : `reads podman secret ${source}, which rick does not create`,
  };
}

/**
 * A named volume or a `.volume` unit as a mount source: the bundle's own
 * (made by one of its `.volume` units, or named after the bundle) is free;
 * another's needs a grant, as it holds another service's data.
 */
export function namedVolume(names: BundleNames, source: string): Control | undefined {
  if (names.volumes.has(source)) return undefined;
  if (!source.endsWith('.volume') && isBundlePrefixed(names.bundle, source)) return undefined;
  return {
    rule: 'volumes',
    need: { kind: 'volumes', value: source },
    detail: source.endsWith('.volume')
      ? `mounts the volume of unit ${source}, which is not one of ${names.bundle}'s`
      : `mounts named volume ${source}, which no .volume unit of ${names.bundle} makes and whose name is not ${names.bundle}'s`,
  };
}

/**
 * A `.volume` unit's `VolumeName=`: quadlet creates it with `--ignore`, so a
 * name the host already has (another bundle's data) is adopted, not made.
 */
export function volumeName(bundle: string, unit: string, name: string): Control | undefined {
  if (isBundlePrefixed(bundle, name) || name === `systemd-${unit.slice(0, -'.volume'.length)}`)
    return undefined;
  return {
    rule: 'volumes',
    need: { kind: 'volumes', value: name },
    detail: `quadlet reuses volume ${name} when it exists, and its name is not ${bundle}'s`,
  };
}

/** Image transports (containers-transports(5)) whose reference is a host path. */
const pathTransports = ['oci-archive', 'docker-archive', 'oci', 'dir', 'sif', 'tarball', 'ostree'];

/**
 * An image reference as podman reads it: a registry name is free; a
 * transport that reads the host (`oci-archive:/root/x.tar`, `dir:…`) reads
 * that host path, as root, and a daemon or a store path reaches further.
 * Returns the host path read, or a control for what cannot be a path.
 */
export function imageSource(value: string): { path: string; detail: string } | Control | undefined {
  const m = /^([a-z][a-z0-9-]*):(.*)$/.exec(value);
  if (!m) return undefined;
  const [, transport = '', rest = ''] = m;
  if (pathTransports.includes(transport)) {
    // A path may carry `:reference` after it (oci:, oci-archive:, docker-archive:).
    const path = transport === 'dir' || transport === 'sif' ? rest : rest.split(':')[0]!;
    if (!path.startsWith('/')) {
      return {
        rule: 'image-sources',
        need: { kind: 'privileged' },
        detail: `image transport ${transport}: reads ${path || 'a path'} from the host, which is not an absolute path`,
      };
    }
    return { path, detail: `image transport ${transport}: reads the image from this host path` };
  }
  if (transport === 'docker-daemon') {
    return {
      path: '/var/run/docker.sock',
      detail: "image transport docker-daemon: talks to the host's Docker daemon",
    };
  }
  if (transport === 'containers-storage' && rest.startsWith('[')) {
    return {
      rule: 'image-sources',
      need: { kind: 'privileged' },
      detail: 'containers-storage:[…] names another image store on the host',
    };
  }
  return undefined;
}
