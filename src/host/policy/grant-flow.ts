/**
 * `rick-install --grant <bundle.tgz>`: show what a verified bundle needs
 * beyond this host's grant, record the grant when the operator accepts, then
 * install as usual. Used by bootstrap.sh for a host's first release.
 *
 * Safe by construction: the signature is checked before anything inside the
 * bundle is shown; without a terminal the operator's consent must be given
 * with --yes; a `privileged` need is never granted by --yes (only by a person
 * at a terminal, or by editing the file); a refusal writes nothing.
 */
import { rm, rmdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RickError } from '../../errors.js';
import { readGeneration, readLiveGenerationNumber } from '../generations.js';
import {
  type InstallerDeps,
  type InstallOptions,
  type InstallResult,
  installBundle,
  type Log,
  readBundleFor,
  readHostReadiness,
} from '../install.js';
import { factsMissing, readinessRefusal } from '../intake/readiness.js';
import { hostPaths } from '../paths.js';
import { writeFileAtomic } from '../state.js';
import type { Host } from '../system.js';
import { formatPolicyReport, policyRefusal } from './check.js';
import { appendGrant, type Grant } from './grant.js';

export interface GrantOptions {
  /** Accept without asking (non-interactive use). */
  yes: boolean;
}

export async function grantAndInstall(
  options: InstallOptions,
  grant: GrantOptions,
  deps: {
    host: Host;
    log: Log;
    validateUnits?: InstallerDeps['validateUnits'];
    prompt?: InstallerDeps['prompt'];
  },
): Promise<InstallResult> {
  const paths = hostPaths(options.root ?? '/');
  const verified = await readBundleFor(options, paths);
  const { manifest } = verified.contents;
  const liveNumber = await readLiveGenerationNumber(paths);
  const live = liveNumber === undefined ? undefined : await readGeneration(paths, liveNumber);
  // Groups, users and secrets first: a grant is asked for, and written, only
  // for a bundle this host can otherwise take, so that the refusal names
  // everything at once and leaves no grant behind.
  const { readiness } = await readHostReadiness(options, paths, deps.host, verified, live);
  const report = readiness.policy;
  deps.log(`${manifest.name} ${manifest.version}, signed by ${verified.signer.fingerprint}`);
  for (const line of formatPolicyReport(report).trimEnd().split('\n')) deps.log(line);
  if (factsMissing(readiness)) throw readinessRefusal(readiness, { withPolicy: true });
  let grantDirExisted = true;
  if (report.missing.length > 0) {
    const privileged = report.missing.some((n) => n.kind === 'privileged');
    if (grant.yes) {
      if (privileged) {
        throw new RickError(
          'USAGE',
          `${manifest.name} ${manifest.version} needs the privileged profile, which --yes does not grant`,
          {
            hint: `nothing was changed; grant it at a terminal without --yes, or write PROFILE=privileged in ${report.grant.file}`,
          },
        );
      }
    } else {
      const answer = await deps.prompt?.(
        `Grant ${manifest.name} what is marked NEW above${privileged ? ' (including the PRIVILEGED profile: no rule applies)' : ''}? [y/N] `,
      );
      if (answer === undefined) {
        throw new RickError('USAGE', '--grant needs a terminal to ask on, or --yes', {
          hint: 'nothing was changed; pass --grant --yes to accept what the bundle declares without asking',
        });
      }
      if (!/^y(es)?$/i.test(answer.trim())) {
        deps.log('not granted');
        throw policyRefusal(report, { declined: true });
      }
    }
    grantDirExisted = await stat(dirname(report.grant.file)).then(
      () => true,
      () => false,
    );
    await appendGrant(
      report.grant,
      report.missing,
      `granted ${deps.host.clock.now().toISOString()} for ${manifest.name} ${manifest.version} by rick-install --grant`,
    );
    deps.log(`granted: wrote ${report.grant.file}`);
  } else {
    deps.log(`nothing new to grant`);
    return install();
  }
  try {
    return await install();
  } catch (error) {
    // A grant is for a release that went live: a failed install takes it back.
    await restoreGrant(report.grant, grantDirExisted);
    deps.log(`not installed: ${report.grant.file} restored as it was`);
    throw error;
  }

  function install(): Promise<InstallResult> {
    return installBundle(options, {
      host: deps.host,
      log: deps.log,
      verified,
      ...(deps.validateUnits ? { validateUnits: deps.validateUnits } : {}),
    });
  }
}

/** Puts a grant file back as it was read: its text, or no file. */
async function restoreGrant(grant: Grant, dirExisted: boolean): Promise<void> {
  if (!grant.exists) {
    await rm(grant.file, { force: true });
    if (!dirExisted) await rmdir(dirname(grant.file)).catch(() => {});
    return;
  }
  await writeFileAtomic(grant.file, grant.text, 0o644);
}

/** The prompt of a real terminal: undefined when stdin is not one. */
export async function terminalPrompt(question: string): Promise<string | undefined> {
  if (!process.stdin.isTTY) return undefined;
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}
