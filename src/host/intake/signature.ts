/**
 * The first half of a bundle's way in (src/host/intake/trust.ts has the
 * whole): read the trusted keys, the signature and the bundle's bytes, each
 * exactly once, and have gpgv check the signature over those bytes. Nothing
 * here looks inside the bundle.
 *
 * This half is all I/O and a child process, so the single-file installer
 * starts it for an install command line before it even loads the rest of
 * the program (installer/entry.ts), and the install takes that result when
 * it asks for the very same request (see takeVerification). For gpgv to run
 * while the program loads, everything up to its start is synchronous: a few
 * small files and the bundle, read once each; the program's loading never
 * yields to the event loop, so an asynchronous read would wait for it.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { readKeyFiles } from '../../bundle/keyring.js';
import { describe, RickError } from '../../errors.js';
import { trustedKeysFor } from '../../trust/key-state.js';
import { type GpgvOptions, keyringFor, type VerifiedSignature, verifyWithGpgv } from './gpgv.js';

/** The largest bundle file read, in bytes (also the archive reader's compressed-size cap). */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

export interface VerifyRequest {
  /** The bundle tarball. */
  bundlePath: string;
  /** Its binary detached signature; defaults to `<bundlePath>.sig`. */
  signaturePath?: string;
  /** A key file or a directory of `*.asc`/`*.gpg` files (`/etc/rick/keys` on a host). */
  keyringPath: string;
  /** Require the key files and their directory to be owned by this uid (0 on a host). */
  requireKeyOwner?: number;
  /**
   * The host's state directory (/var/lib/rick), where the key list accepted
   * last is kept: with a root key in the keyring, the keys it names for
   * bundles are the trusted ones (src/trust/key-state.ts).
   */
  keyListDir?: string;
  /** The most bytes the bundle file may hold. */
  maxBytes: number;
  /** How to run gpgv, which checks the signature (src/host/intake/gpgv.ts). */
  gpgv?: GpgvOptions;
}

export interface VerifiedBytes {
  /** The bundle file's bytes, exactly as verified. */
  bytes: Buffer;
  signer: VerifiedSignature;
}

/** An OpenPGP detached signature is a few hundred bytes; anything huge is not one. */
const MAX_SIGNATURE_BYTES = 64 * 1024;

type Missing = { missing: true };

/**
 * Reads a regular file whole, at most `maxBytes`. Opens non-blocking so that a
 * FIFO cannot hang the installer, and checks the opened descriptor, not the
 * path, so that what is checked is what is read.
 */
function readRegularFile(path: string, maxBytes: number, what: string): Buffer | Missing {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
    throw new RickError('IO_ERROR', `cannot open ${what} ${path}: ${describe(error)}`, {
      cause: error,
    });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new RickError('USAGE', `${what} ${path} is not a regular file`);
    if (st.size > maxBytes) {
      throw new RickError(
        what === 'signature' ? 'SIGNATURE_INVALID' : 'BUNDLE_INVALID',
        `${what} ${path} is ${st.size} bytes, more than the limit of ${maxBytes}`,
      );
    }
    const data = readFileSync(fd);
    // The file grew between stat and read: refuse rather than read unbounded input.
    if (data.length > maxBytes) {
      throw new RickError('BUNDLE_INVALID', `${what} ${path} grew while being read`);
    }
    return data;
  } finally {
    closeSync(fd);
  }
}

/** Uid that must own keys and secrets: root on a host run as root; unchecked otherwise. */
export function requiredOwner(): number | undefined {
  return process.getuid?.() === 0 ? 0 : undefined;
}

/** Reads the keys, the signature and the bundle, and checks the signature over those bytes. */
export async function verifyBundleFile(request: VerifyRequest): Promise<VerifiedBytes> {
  const signaturePath = request.signaturePath ?? `${request.bundlePath}.sig`;
  const owner =
    request.requireKeyOwner === undefined ? {} : { requireOwner: request.requireKeyOwner };
  const keyring = keyringFor(
    request.keyListDir === undefined
      ? readKeyFiles(request.keyringPath, owner)
      : trustedKeysFor(request.keyringPath, request.keyListDir, 'bundles', owner).files,
    request.keyringPath,
  );

  const signature = readRegularFile(signaturePath, MAX_SIGNATURE_BYTES, 'signature');
  if ('missing' in signature) {
    throw new RickError('SIGNATURE_MISSING', `no signature file ${signaturePath}`, {
      hint: 'download the .sig published with the bundle, or pass --signature FILE',
    });
  }

  const bytes = readRegularFile(request.bundlePath, request.maxBytes, 'bundle');
  if ('missing' in bytes) {
    throw new RickError('INPUT_NOT_FOUND', `bundle ${request.bundlePath} does not exist`);
  }

  const signer = await verifyWithGpgv(bytes, signature, keyring, request.gpgv);
  return { bytes, signer };
}

/**
 * A verification started ahead of time, kept where both parts of the
 * single-file installer see it (they are built separately and share no
 * module state).
 */
interface StartedVerification {
  key: string;
  result: Promise<VerifiedBytes>;
}
const slot = globalThis as typeof globalThis & { __rickStartedVerification?: StartedVerification };

function requestKey(request: VerifyRequest): string {
  return JSON.stringify([
    request.bundlePath,
    request.signaturePath ?? `${request.bundlePath}.sig`,
    request.keyringPath,
    request.requireKeyOwner ?? null,
    request.keyListDir ?? null,
    request.maxBytes,
  ]);
}

/**
 * Starts verifying ahead of time; the returned promise settles (never
 * rejects) when it is done, so that the process can wait for it before it
 * exits whether or not anything took the result.
 */
export function startVerification(request: VerifyRequest): Promise<void> {
  const result = verifyBundleFile(request);
  slot.__rickStartedVerification = { key: requestKey(request), result };
  return result.then(
    () => undefined,
    () => undefined,
  );
}

/**
 * The result of the verification started for exactly this request, if there
 * is one (and only once), else a verification run now. Its refusals are the
 * same either way: the same function produced them.
 */
export function takeVerification(request: VerifyRequest): Promise<VerifiedBytes> {
  const started = slot.__rickStartedVerification;
  if (started && request.gpgv === undefined && started.key === requestKey(request)) {
    slot.__rickStartedVerification = undefined;
    return started.result;
  }
  return verifyBundleFile(request);
}
