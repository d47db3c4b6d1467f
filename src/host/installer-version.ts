/**
 * The installer a generation carries becomes /usr/local/bin/rick-install
 * (a link through `current`). Every bundle ships one, built from whatever
 * rick its release was built with, so installing an old bundle, or a bundle
 * of another, older release line, would otherwise bring an older installer
 * back. The installer therefore never goes backwards: a new generation takes
 * the installer the bundle carries only when it is at least as new as the
 * one live; an older one is not linked (a rollback, which returns to a
 * generation this host already ran, takes that generation's installer).
 *
 * The version is read from the file itself, the second line that
 * installer/build.mjs writes: `// rick-install version X.Y.Z`. It is inside
 * the signed bundle, so it is as trustworthy as the installer. An installer
 * without that line (built before versions were recorded) counts as older
 * than any that has one.
 */
import { open } from 'node:fs/promises';
import semver from 'semver';

const VERSION_LINE = /^#![^\n]*\n\/\/ rick-install version (\S+)\n/;
/** The version line is within the first bytes of the file. */
const HEAD_BYTES = 256;

/** The version an installer's bytes state, or undefined when they state none. */
export function installerVersion(bytes: Buffer): string | undefined {
  const version = VERSION_LINE.exec(bytes.subarray(0, HEAD_BYTES).toString('latin1'))?.[1];
  return version !== undefined && semver.valid(version) === version ? version : undefined;
}

/** Reads only the head of an installer file for its version; undefined when missing or unstated. */
export async function readInstallerVersion(file: string): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const head = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(head, 0, HEAD_BYTES, 0);
    return installerVersion(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

export interface InstallerChoice {
  take: 'carried' | 'live' | 'none';
  /** Set when the bundle carries an older installer, which is not taken: why. */
  note?: string;
}

/**
 * Which installer the new generation keeps. Pure. `carried` is the version
 * the bundle's installer states (null: it states none), `live` the live
 * generation's (null likewise); undefined means there is no such installer.
 */
export function chooseInstaller(
  bundle: string,
  carried: string | null | undefined,
  live: string | null | undefined,
): InstallerChoice {
  if (carried === undefined) return { take: live === undefined ? 'none' : 'live' };
  if (live === undefined || live === null) return { take: 'carried' };
  if (carried !== null && semver.gte(carried, live)) return { take: 'carried' };
  const what = carried === null ? 'an installer that states no version' : `the older ${carried}`;
  return {
    take: 'live',
    note: `keeping rick-install ${live}: ${bundle} carries ${what}, which is not linked`,
  };
}
