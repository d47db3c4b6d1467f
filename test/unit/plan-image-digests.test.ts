import { describe, expect, it } from 'vitest';
import type { Service } from '../../src/bundle/manifest.js';
import {
  formatPlan,
  type GenerationView,
  planActivation,
  type RenderedBundle,
} from '../../src/host/activation/plan.js';

const services: Service[] = [
  { unit: 'app.container', service: 'app.service', activeTimeoutSec: 30, checks: [] },
];
const aaa = `sha256:${'a'.repeat(64)}`;
const bbb = `sha256:${'b'.repeat(64)}`;

function view(generation: number, files: Record<string, string>): GenerationView {
  const bundle: RenderedBundle = {
    name: 'app',
    version: `1.0.${generation}`,
    services,
    files: new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)])),
    masked: new Map(Object.entries(files)),
  };
  return { generation, bundles: new Map([['app', bundle]]) };
}

const unit = (image: string) =>
  `[Container]\nImage=${image}\n\n[Install]\nWantedBy=multi-user.target\n`;

describe('plan: an image whose pinned digest moves', () => {
  it('is its own line, old digest to new, beside the restart it causes', () => {
    const plan = planActivation(
      view(1, { 'quadlet/app.container': unit(`ghcr.io/x/app:1.2@${aaa}`) }),
      view(2, { 'quadlet/app.container': unit(`ghcr.io/x/app:1.2@${bbb}`) }),
    );
    expect(plan.imageDigests).toEqual([
      { bundle: 'app', reference: 'ghcr.io/x/app:1.2', before: aaa, after: bbb },
    ]);
    expect(plan.restart).toEqual(['app.service']);
    const text = formatPlan(plan);
    expect(text).toContain(
      `image   ghcr.io/x/app:1.2 sha256:aaaaaaaaaaaa… → sha256:bbbbbbbbbbbb…\n`,
    );
    expect(text).toContain('restart app.service (quadlet/app.container changed)');
  });

  it('says so when a tag becomes pinned, and is silent when the digest or the tag is unchanged', () => {
    const pinned = planActivation(
      view(1, { 'quadlet/app.container': unit('ghcr.io/x/app:1.2') }),
      view(2, { 'quadlet/app.container': unit(`ghcr.io/x/app:1.2@${aaa}`) }),
    );
    expect(formatPlan(pinned)).toContain(
      'image   ghcr.io/x/app:1.2 (tag only) → sha256:aaaaaaaaaaaa…',
    );
    const same = planActivation(
      view(1, { 'quadlet/app.container': unit(`ghcr.io/x/app:1.2@${aaa}`) }),
      view(2, { 'quadlet/app.container': unit(`ghcr.io/x/app:1.2@${aaa}`) }),
    );
    expect(same.imageDigests).toEqual([]);
    // A new tag is the unit's change (its diff shows it), not a digest that moved.
    const retagged = planActivation(
      view(1, { 'quadlet/app.container': unit(`ghcr.io/x/app:1.2@${aaa}`) }),
      view(2, { 'quadlet/app.container': unit(`ghcr.io/x/app:1.3@${bbb}`) }),
    );
    expect(retagged.imageDigests).toEqual([]);
    expect(formatPlan(retagged)).not.toMatch(/^image /m);
  });
});
