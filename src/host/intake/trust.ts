/**
 * The one door through which a bundle enters the host: read the trusted
 * keys, read the signature, read the bundle bytes exactly once, verify the
 * signature over those bytes, and only then parse the archive from the very
 * same buffer. Nothing inside an unverified bundle is ever looked at, and the
 * file cannot change between the check and the use. The signature is
 * checked by gpgv (src/host/intake/gpgv.ts), given a private copy of those bytes;
 * that first half is src/host/intake/signature.ts.
 */
import { createHash } from 'node:crypto';
import {
  type ArchiveLimits,
  type BundleContents,
  defaultArchiveLimits,
  parseBundleArchive,
} from '../../bundle/archive.js';
import type { GpgvOptions, VerifiedSignature } from './gpgv.js';
import { takeVerification } from './signature.js';

export interface ReadVerifiedBundleOptions {
  /** The bundle tarball. */
  bundlePath: string;
  /** Its binary detached signature; defaults to `<bundlePath>.sig`. */
  signaturePath?: string;
  /** A key file or a directory of `*.asc`/`*.gpg` files (`/etc/rick/keys` on a host). */
  keyringPath: string;
  /** Require the key files and their directory to be owned by this uid (0 on a host). */
  requireKeyOwner?: number;
  /** Where the host keeps its accepted key list (src/host/intake/signature.ts). */
  keyListDir?: string;
  /** Caps for reading the archive; `maxCompressedBytes` also caps the file read. */
  limits?: ArchiveLimits;
  /** How to run gpgv, which checks the signature (src/host/intake/gpgv.ts). */
  gpgv?: GpgvOptions;
}

export interface VerifiedBundle {
  /** The bundle file's bytes, exactly as verified. */
  bytes: Buffer;
  /** Lowercase hex sha256 of `bytes`. */
  sha256: string;
  signer: VerifiedSignature;
  contents: BundleContents;
}

/** Reads, verifies and parses a signed bundle. See the module comment for the order. */
export async function readVerifiedBundle(
  options: ReadVerifiedBundleOptions,
): Promise<VerifiedBundle> {
  const limits = options.limits ?? defaultArchiveLimits;
  const { bytes, signer } = await takeVerification({
    bundlePath: options.bundlePath,
    keyringPath: options.keyringPath,
    maxBytes: limits.maxCompressedBytes,
    ...(options.signaturePath === undefined ? {} : { signaturePath: options.signaturePath }),
    ...(options.requireKeyOwner === undefined ? {} : { requireKeyOwner: options.requireKeyOwner }),
    ...(options.keyListDir === undefined ? {} : { keyListDir: options.keyListDir }),
    ...(options.gpgv === undefined ? {} : { gpgv: options.gpgv }),
  });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const contents = parseBundleArchive(bytes, limits);
  return { bytes, sha256, signer, contents };
}
