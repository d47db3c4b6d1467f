/**
 * `rick-bundle sign <bundle.tgz> --key FILE`: a binary detached OpenPGP
 * signature over the tarball's exact bytes, written to <bundle.tgz>.sig.
 * The passphrase comes from an environment variable, never an argument.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { writeOutputFile } from '../build/output-file.js';
import type { Output } from '../cli/run.js';
import { describe, RickError } from '../errors.js';

export const DEFAULT_PASSPHRASE_ENV = 'RICK_SIGNING_PASSPHRASE';

export interface SignDeps {
  output: Output;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface SignOptions {
  bundle: string;
  key: string;
  passphraseEnv?: string;
  /** Where to write the signature; defaults to <bundle>.sig. */
  signature?: string;
}

export async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new RickError('INPUT_NOT_FOUND', `cannot read ${what} ${path}: ${describe(error)}`);
  }
}

export async function signBundle(
  options: SignOptions,
  deps: SignDeps,
): Promise<{ signaturePath: string; fingerprint: string }> {
  const bundle = resolve(deps.cwd, options.bundle);
  const data = await readInput(bundle, 'bundle');
  const armored = (await readInput(resolve(deps.cwd, options.key), 'signing key')).toString('utf8');
  const envName = options.passphraseEnv ?? DEFAULT_PASSPHRASE_ENV;
  const passphrase = deps.env[envName];
  // OpenPGP is loaded only by the commands that use it, to keep `build` quick to start.
  const { fingerprintOf, readSigningKey, signDetached } = await import('../bundle/openpgp.js');
  const key = await readSigningKey(armored, passphrase === '' ? undefined : passphrase, envName);
  const signature = await signDetached(data, key);
  const signaturePath = options.signature ? resolve(deps.cwd, options.signature) : `${bundle}.sig`;
  await writeOutputFile(signaturePath, signature, { mode: 0o644 });
  return { signaturePath, fingerprint: fingerprintOf(key) };
}
