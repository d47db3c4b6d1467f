/**
 * `rick-bundle verify <bundle.tgz> --keyring PATH`: the detached signature
 * first, against the given keys only; then the archive and its manifest,
 * as the host installer reads them.
 */
import { resolve } from 'node:path';
import type { Manifest } from '../bundle/manifest.js';
import type { Output } from '../cli/run.js';
import { RickError } from '../errors.js';
import { readInput } from './sign.js';

export interface VerifyDeps {
  output: Output;
  cwd: string;
}

export interface VerifyOptions {
  bundle: string;
  keyring: string;
  signature?: string;
}

export async function verifyBundle(
  options: VerifyOptions,
  deps: VerifyDeps,
): Promise<{ fingerprint: string; manifest: Manifest }> {
  const bundle = resolve(deps.cwd, options.bundle);
  const signaturePath = options.signature ? resolve(deps.cwd, options.signature) : `${bundle}.sig`;
  const data = await readInput(bundle, 'bundle');
  let signature: Buffer;
  try {
    signature = await readInput(signaturePath, 'signature');
  } catch (error) {
    throw new RickError('SIGNATURE_MISSING', (error as Error).message, {
      hint: 'sign it with `rick-bundle sign` or pass --signature FILE',
    });
  }
  const { readKeyring, verifyDetached } = await import('../bundle/openpgp.js');
  const { parseBundleArchive } = await import('../bundle/archive.js');
  const keys = await readKeyring(resolve(deps.cwd, options.keyring));
  const verified = await verifyDetached(data, signature, keys);
  // Only a bundle with a good signature is opened.
  const { manifest } = parseBundleArchive(data);
  return { fingerprint: verified.fingerprint, manifest };
}
