/**
 * The one door through which a bundle enters the host: read the trusted
 * keys, read the signature, read the bundle bytes exactly once, verify the
 * signature over those bytes, and only then parse the archive from the very
 * same buffer. Nothing inside an unverified bundle is ever looked at, and the
 * file cannot change between the check and the use. The signature is
 * checked by gpgv (src/io/gpgv.ts), which is given those bytes on stdin.
 */
import { createHash } from 'node:crypto';
import { constants, type promises as fsp } from 'node:fs';
import { open } from 'node:fs/promises';
import { describe, RickError } from '../errors.js';
import {
  type ArchiveLimits,
  type BundleContents,
  defaultArchiveLimits,
  parseBundleArchive,
} from './bundle-archive.js';
import { type GpgvOptions, keyringFor, type VerifiedSignature, verifyWithGpgv } from './gpgv.js';
import { readKeyFiles } from './keyring.js';

export interface ReadVerifiedBundleOptions {
  /** The bundle tarball. */
  bundlePath: string;
  /** Its binary detached signature; defaults to `<bundlePath>.sig`. */
  signaturePath?: string;
  /** A key file or a directory of `*.asc`/`*.gpg` files (`/etc/rick/keys` on a host). */
  keyringPath: string;
  /** Require the key files and their directory to be owned by this uid (0 on a host). */
  requireKeyOwner?: number;
  /** Caps for reading the archive; `maxCompressedBytes` also caps the file read. */
  limits?: ArchiveLimits;
  /** How to run gpgv, which checks the signature (src/io/gpgv.ts). */
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

/** An OpenPGP detached signature is a few hundred bytes; anything huge is not one. */
const MAX_SIGNATURE_BYTES = 64 * 1024;

type Missing = { missing: true };

/**
 * Reads a regular file whole, at most `maxBytes`. Opens non-blocking so that a
 * FIFO cannot hang the installer, and checks the opened descriptor, not the
 * path, so that what is checked is what is read.
 */
async function readRegularFile(
  path: string,
  maxBytes: number,
  what: string,
): Promise<Buffer | Missing> {
  let handle: fsp.FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
    throw new RickError('IO_ERROR', `cannot open ${what} ${path}: ${describe(error)}`, {
      cause: error,
    });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new RickError('USAGE', `${what} ${path} is not a regular file`);
    if (st.size > maxBytes) {
      throw new RickError(
        what === 'signature' ? 'SIGNATURE_INVALID' : 'BUNDLE_INVALID',
        `${what} ${path} is ${st.size} bytes, more than the limit of ${maxBytes}`,
      );
    }
    const data = await handle.readFile();
    // The file grew between stat and read: refuse rather than read unbounded input.
    if (data.length > maxBytes) {
      throw new RickError('BUNDLE_INVALID', `${what} ${path} grew while being read`);
    }
    return data;
  } finally {
    await handle.close();
  }
}

/** Reads, verifies and parses a signed bundle. See the module comment for the order. */
export async function readVerifiedBundle(
  options: ReadVerifiedBundleOptions,
): Promise<VerifiedBundle> {
  const limits = options.limits ?? defaultArchiveLimits;
  const signaturePath = options.signaturePath ?? `${options.bundlePath}.sig`;

  const keyring = keyringFor(
    await readKeyFiles(
      options.keyringPath,
      options.requireKeyOwner === undefined ? {} : { requireOwner: options.requireKeyOwner },
    ),
    options.keyringPath,
  );

  const signature = await readRegularFile(signaturePath, MAX_SIGNATURE_BYTES, 'signature');
  if ('missing' in signature) {
    throw new RickError('SIGNATURE_MISSING', `no signature file ${signaturePath}`, {
      hint: 'download the .sig published with the bundle, or pass --signature FILE',
    });
  }

  const bytes = await readRegularFile(options.bundlePath, limits.maxCompressedBytes, 'bundle');
  if ('missing' in bytes) {
    throw new RickError('INPUT_NOT_FOUND', `bundle ${options.bundlePath} does not exist`);
  }

  const signer = await verifyWithGpgv(bytes, signature, keyring, options.gpgv);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const contents = parseBundleArchive(bytes, limits);
  return { bytes, sha256, signer, contents };
}
