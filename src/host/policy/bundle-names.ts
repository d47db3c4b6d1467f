/**
 * The host-wide names a bundle's own units make: its systemd units, and the
 * podman containers, pods and volumes its Quadlet units create. Every other
 * container, pod, volume or unit is another bundle's or the host's, and a
 * unit may join, mount, activate or depend on it only when the host grants
 * it (docs/policy.md). Pure.
 */
import { lookupLast, type UnitFile, unitTypeOf } from '../../bundle/unit-file.js';

export interface BundleNames {
  bundle: string;
  /** Unit names: Quadlet unit files, the services quadlet makes of them, plain units. */
  units: ReadonlySet<string>;
  /** Container names and the `.container` files that make them. */
  containers: ReadonlySet<string>;
  /** Pod names and the `.pod` files that make them. */
  pods: ReadonlySet<string>;
  /** Named volumes and the `.volume` files that make them. */
  volumes: ReadonlySet<string>;
}

function groupOf(unit: UnitFile): string {
  const type = unitTypeOf(unit.name) ?? '';
  return type.charAt(0).toUpperCase() + type.slice(1);
}

function baseOf(name: string): string {
  return name.slice(0, name.lastIndexOf('.'));
}

/** The service quadlet generates for a unit (its `ServiceName=`, or the default). */
export function generatedService(unit: UnitFile): string {
  const type = unitTypeOf(unit.name);
  const named = lookupLast(unit, groupOf(unit), 'ServiceName');
  if (named && named.value !== '') return `${named.value}.service`;
  const base = baseOf(unit.name);
  return type === 'container' || type === 'kube' ? `${base}.service` : `${base}-${type}.service`;
}

/** The podman object a Quadlet unit creates, by its naming key or quadlet's `systemd-<base>`. */
export function createdObject(unit: UnitFile): string | undefined {
  const key = { container: 'ContainerName', pod: 'PodName', volume: 'VolumeName' }[
    unitTypeOf(unit.name) as 'container' | 'pod' | 'volume'
  ];
  if (key === undefined) return undefined;
  const named = lookupLast(unit, groupOf(unit), key);
  return named && named.value !== '' ? named.value : `systemd-${baseOf(unit.name)}`;
}

/**
 * Names a bundle may give objects podman makes on first use (a named volume
 * mounted before any `.volume` unit creates it): its own name, or its name
 * and a dash. Another bundle using such a name needs a grant.
 */
export function isBundlePrefixed(bundle: string, name: string): boolean {
  return name === bundle || name.startsWith(`${bundle}-`);
}

export function bundleNames(
  bundle: string,
  quadlet: readonly UnitFile[],
  plainUnits: Iterable<string>,
): BundleNames {
  const units = new Set<string>(plainUnits);
  const containers = new Set<string>();
  const pods = new Set<string>();
  const volumes = new Set<string>();
  for (const unit of quadlet) {
    units.add(unit.name);
    units.add(generatedService(unit));
    const object = createdObject(unit);
    const type = unitTypeOf(unit.name);
    const set =
      type === 'container'
        ? containers
        : type === 'pod'
          ? pods
          : type === 'volume'
            ? volumes
            : undefined;
    if (set) {
      set.add(unit.name);
      if (object) set.add(object);
    }
  }
  return { bundle, units, containers, pods, volumes };
}
