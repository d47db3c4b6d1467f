/**
 * Pulls the images a plan's units need before the flip, so that a pull that
 * fails changes nothing and the services' downtime is their restart, not
 * their download. One log line (a journal line under the timer) per image.
 */
import type { Host } from '../system.js';
import type { ImagePull } from './plan.js';

/**
 * For benchmarks only (bench/upgrade.mjs): set to 1, no image is pulled
 * before the swap, so that the containers' start downloads them, as before
 * images were pulled first. Never set on a host.
 */
export const SKIP_PULLS_FOR_BENCHMARK = 'RICK_BENCH_SKIP_PREPULL';

/** Pulls each image in turn; throws the first IMAGE_PULL_FAILED. */
export async function pullImages(
  host: Host,
  images: readonly ImagePull[],
  log: (line: string) => void,
): Promise<void> {
  if (process.env[SKIP_PULLS_FOR_BENCHMARK] === '1' && images.length) {
    log(`images not pulled before the swap (${SKIP_PULLS_FOR_BENCHMARK}=1, for benchmarks only)`);
    return;
  }
  for (const image of images) {
    const started = host.clock.monotonicMs();
    const outcome = await host.pullImage(image);
    const seconds = ((host.clock.monotonicMs() - started) / 1000).toFixed(1);
    const what =
      outcome === 'present'
        ? 'present, not pulled'
        : outcome === 'kept'
          ? `kept the local copy: the registry could not be asked for a newer one`
          : `pulled in ${seconds}s`;
    log(`image ${image.image}: ${what} (Pull=${image.policy}; for ${image.units.join(', ')})`);
  }
}
