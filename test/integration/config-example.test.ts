/** The documented rick.conf example is a valid rick.conf, with the documented defaults. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DOWNLOAD_TIMEOUT_SEC,
  DEFAULT_FEED_TIMEOUT_SEC,
  DEFAULT_MAX_BUNDLE_BYTES,
  parseConfig,
} from '../../src/feed/config.js';
import { hostPaths } from '../../src/host/paths.js';
import { repoRoot } from '../helpers/host-tree.js';

describe('installer/rick.conf.example', () => {
  it('parses, and its commented defaults are the real ones', async () => {
    const text = await readFile(join(repoRoot, 'installer/rick.conf.example'), 'utf8');
    const metrics = hostPaths('/').metricsFile;
    const config = parseConfig(text, 'rick.conf.example', metrics);
    expect(config).toMatchObject({
      feed: 'acme/rick-releases',
      bundles: ['authentik'],
      channel: 'stable',
      range: '^1',
      metricsFile: metrics,
    });
    // Uncommenting the defaults changes nothing.
    const uncommented = parseConfig(text.replace(/^#([A-Z_]+=)/gm, '$1'), 'x', metrics);
    expect(uncommented).toEqual(config);
    expect(config.maxBundleBytes).toBe(DEFAULT_MAX_BUNDLE_BYTES);
    expect(config.downloadTimeoutSec).toBe(DEFAULT_DOWNLOAD_TIMEOUT_SEC);
    expect(config.feedTimeoutSec).toBe(DEFAULT_FEED_TIMEOUT_SEC);
  });
});
