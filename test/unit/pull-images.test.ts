import { afterEach, describe, expect, it } from 'vitest';
import { pullImages, SKIP_PULLS_FOR_BENCHMARK } from '../../src/host/activation/images.js';
import type { ImagePull } from '../../src/host/activation/plan.js';
import type { Host, PullOutcome } from '../../src/host/system.js';

const images: ImagePull[] = [
  {
    image: 'localhost:5000/a:1',
    policy: 'missing',
    options: [],
    source: 'Image=',
    units: ['a.service'],
  },
  {
    image: 'localhost:5000/b:1',
    policy: 'missing',
    options: [],
    source: 'Image=',
    units: ['b.service'],
  },
];

function hostPulling(outcome: PullOutcome): { host: Host; pulled: string[] } {
  const pulled: string[] = [];
  const host = {
    clock: { now: () => new Date(0), monotonicMs: () => 0, sleep: async () => {} },
    pullImage: async (need: { image: string }) => {
      pulled.push(need.image);
      return outcome;
    },
  } as unknown as Host;
  return { host, pulled };
}

describe('pullImages', () => {
  afterEach(() => {
    delete process.env[SKIP_PULLS_FOR_BENCHMARK];
  });

  it('pulls every image in turn, one line each', async () => {
    const { host, pulled } = hostPulling('pulled');
    const lines: string[] = [];
    await pullImages(host, images, (l) => lines.push(l));
    expect(pulled).toEqual(['localhost:5000/a:1', 'localhost:5000/b:1']);
    expect(lines).toEqual([
      'image localhost:5000/a:1: pulled in 0.0s (Pull=missing; for a.service)',
      'image localhost:5000/b:1: pulled in 0.0s (Pull=missing; for b.service)',
    ]);
  });

  it('pulls nothing, and says so, only when the benchmark switch is 1', async () => {
    const { host, pulled } = hostPulling('pulled');
    const lines: string[] = [];
    process.env[SKIP_PULLS_FOR_BENCHMARK] = '1';
    await pullImages(host, images, (l) => lines.push(l));
    expect(pulled).toEqual([]);
    expect(lines).toEqual([
      'images not pulled before the swap (RICK_BENCH_SKIP_PREPULL=1, for benchmarks only)',
    ]);
    process.env[SKIP_PULLS_FOR_BENCHMARK] = 'yes';
    await pullImages(host, images.slice(0, 1), (l) => lines.push(l));
    expect(pulled).toEqual(['localhost:5000/a:1']);
  });
});
