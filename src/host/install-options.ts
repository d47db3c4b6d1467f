/**
 * What an install is asked to do and what it needs from outside the process
 * (src/host/install.ts runs it): the options of `rick-install <bundle.tgz>`,
 * `adopt` and the update timer's installs, and what one reports.
 */
import type { Output } from '../cli/run.js';
import type { CheckUnits } from './activation/graph.js';
import type { ActivationPlan } from './activation/plan.js';
import type { AdoptOptions } from './adopt.js';
import type { Expectation } from './intake/identity.js';
import type { Host } from './system.js';

/** What every rick-install command needs from the world outside the process. */
export interface InstallerDeps {
  output: Output;
  /** The host port for a live host (`root` undefined) or a `--root DIR` tree. */
  host: (root: string | undefined) => Host;
  /**
   * Checks a generation's unit directory with podman's quadlet in dry-run
   * and returns the units it generates (activation plans on them), or why it
   * was skipped. Default: runQuadletDryRun.
   */
  validateUnits?: CheckUnits;
  /**
   * Asks the operator a question on the terminal (`rick-install --grant`);
   * resolves undefined when there is no terminal to ask on.
   */
  prompt?: (question: string) => Promise<string | undefined>;
}

export interface InstallOptions {
  bundlePath: string;
  /**
   * The bundle and version the file must hold (`update`, `--expect`);
   * default: what the file name `<name>-<version>.tgz` says.
   */
  expect?: Expectation;
  /** Default `<bundlePath>.sig`. */
  signaturePath?: string;
  /** Default /etc/rick/keys (under --root). */
  keyringPath?: string;
  /** Default /etc/rick/secrets/<bundle>.env (under --root). */
  secretsPath?: string;
  allowDowngrade?: boolean;
  /** `--root DIR`. */
  root?: string;
  /** Generations to keep; stored in state.json once given. */
  keepGenerations?: number;
  /**
   * `rick-install adopt`: take over the host's files that have the names
   * of the bundle's units and sites (src/host/adopt.ts).
   */
  adopt?: AdoptOptions;
}

export interface InstallResult {
  outcome: 'installed' | 'noop';
  bundle: string;
  version: string;
  /** The live generation after the run. */
  generation?: number;
  previousGeneration?: number;
  plan?: ActivationPlan;
  notes: string[];
}
