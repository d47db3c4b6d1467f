/**
 * What an update tick is given (its ports: http, the installer, the clock,
 * the log) and the context the signed index's tick hands from its no-op half
 * (index-tick.ts) to its deciding half (index-decide.ts). Types only, in a
 * module of their own so that the tick's modules need not import each other
 * for them.
 */
import type { Expectation } from '../host/intake/identity.js';
import type { HostPaths } from '../host/paths.js';
import type { HttpClient } from './client.js';
import type { RickConfig } from './config.js';
import type { IndexCache } from './index-cache.js';

export interface UpdateOptions {
  /** Install into this tree instead of `/` (`--root`). */
  root?: string;
  /** `--now`: take releases whose rollout waves have not reached this host yet (index feeds). */
  now?: boolean;
}

/**
 * What `update` needs from the installer: install one downloaded, not yet
 * verified bundle, which must be exactly the bundle and version chosen, in
 * the feed's channel and range (judged again on its verified manifest).
 */
export type InstallDownloaded = (request: {
  bundle: string;
  bundlePath: string;
  signaturePath: string;
  root: string;
  expect: Expectation;
}) => Promise<void>;

export interface UpdateDeps {
  http: HttpClient;
  install: InstallDownloaded;
  /** GITHUB_TOKEN is read from here. */
  env: NodeJS.ProcessEnv;
  now: () => Date;
  /** One line per decision; the journal picks stdout up. */
  log: (line: string) => void;
  /** A line at warning priority (src/feed/journal.ts); `log` with a `warning: ` prefix when absent. */
  warn?: (line: string) => void;
  /**
   * Completes what an interrupted run left on the host (its intent record),
   * under the lock (install.ts completeInterruptedRun). Called by every
   * tick that finds intent.json, before the feed is asked.
   */
  completeInterrupted?: (root: string) => Promise<void>;
}

/** What the metrics textfile reports after a tick. */
export interface Report {
  installed?: Record<string, string>;
  /** Releases held until the operator grants what they need. */
  held?: Record<string, { version: string }>;
  index?: { expires: number; serial: number; yanked: Record<string, string> };
  /** The index was refused as issued in the future (counted in the metrics). */
  indexNotYetValid?: boolean;
}

export interface IndexTick {
  options: UpdateOptions;
  deps: UpdateDeps;
  root: string;
  paths: HostPaths;
  configText: string;
  cache: IndexCache | undefined;
  config: RickConfig | undefined;
}
