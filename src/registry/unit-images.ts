/**
 * The `Image=` lines of rendered Quadlet units: found for `pin`, rewritten
 * with their digests by `build`. Pure.
 *
 * An `Image=` of a `.container`'s `[Container]` or an `.image`'s `[Image]`
 * group names a registry image, unless it names a `.image` or `.build` unit
 * of the bundle (quadlet resolves those itself). Values are trimmed as
 * quadlet's parser trims them (src/bundle/unit-file.ts).
 */

export interface UnitImage {
  /** The unit file, e.g. `authentik-server.container`. */
  unit: string;
  /** The value as rendered, e.g. `ghcr.io/goauthentik/server:2025.10.2`. */
  reference: string;
  /** 0-based index of the line in the unit. */
  line: number;
}

const imageGroups: Record<string, string> = { container: 'Container', image: 'Image' };

function groupOf(unit: string): string | undefined {
  const ext = unit.slice(unit.lastIndexOf('.') + 1);
  return Object.hasOwn(imageGroups, ext) ? imageGroups[ext] : undefined;
}

/** Every registry image a unit names with `Image=`, in order. */
export function findUnitImages(unit: string, content: string): UnitImage[] {
  const wanted = groupOf(unit);
  if (wanted === undefined) return [];
  const found: UnitImage[] = [];
  let group = '';
  content.split('\n').forEach((raw, line) => {
    const text = raw.trim();
    const header = /^\[([^\]]+)\]$/.exec(text);
    if (header) {
      group = header[1]!;
      return;
    }
    if (group !== wanted) return;
    const match = /^Image\s*=(.*)$/.exec(text);
    if (!match) return;
    const reference = match[1]!.trim();
    if (reference === '' || reference.endsWith('.image') || reference.endsWith('.build')) return;
    found.push({ unit, reference, line });
  });
  return found;
}

/**
 * The unit with each locked image written `Image=<reference>@<digest>`,
 * and the references it found that the lock does not hold.
 */
export function pinUnitImages(
  unit: string,
  content: string,
  lock: ReadonlyMap<string, string>,
): { content: string; pinned: UnitImage[]; unpinned: UnitImage[] } {
  const images = findUnitImages(unit, content);
  const lines = content.split('\n');
  const pinned: UnitImage[] = [];
  const unpinned: UnitImage[] = [];
  for (const image of images) {
    const digest = lock.get(image.reference);
    if (digest === undefined) {
      unpinned.push(image);
      continue;
    }
    lines[image.line] = `Image=${image.reference}@${digest}`;
    pinned.push(image);
  }
  return { content: lines.join('\n'), pinned, unpinned };
}
