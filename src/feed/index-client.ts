/**
 * The edges of following a signed release index: checking the index's
 * signature with the host's trusted keys (gpgv, as for bundles, see
 * src/host/intake/gpgv.ts) before anything in it is parsed, keeping the
 * index the host accepted last, and downloading a release's files relative
 * to the index URL, checked against the index's size and sha256 before the
 * bundle's own signature is.
 *
 * The accepted index is kept verbatim with its signature:
 *
 *   /var/lib/rick/release-index.json       the last index accepted, byte for byte
 *   /var/lib/rick/release-index.json.sig   its detached signature
 *
 * It is the rollback floor (a lower serial is refused), what `status` reads,
 * and what a tick decides on again when the server answers 304. Removing it
 * makes the host accept any validly signed, unexpired index once more.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { type KeyFile, readKeyFiles } from '../bundle/keyring.js';
import { type IndexRelease, releaseFileUrl } from '../bundle/release-index.js';
import { isRickError, RickError } from '../errors.js';
import { keyringFor, verifyWithGpgv } from '../host/intake/gpgv.js';
import { requiredOwner } from '../host/intake/signature.js';
import type { HostPaths } from '../host/paths.js';
import { writeFileAtomic } from '../host/state.js';
import { trustedKeysFor } from '../trust/key-state.js';
import type { HttpClient } from './client.js';
import type { AcceptedIndex } from './index-select.js';
import { readKept, readSmallFile } from './small-file.js';
import { SIGNATURE_MAX_BYTES } from './tick-cache.js';

/** The most a detached signature may weigh. */
const USER_AGENT = 'rick-install';

export function acceptedIndexPath(paths: HostPaths): string {
  return join(paths.stateDir, 'release-index.json');
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Checks the index's detached signature with the trusted keys only, before
 * anything in the index is read. Refusals keep their code (SIGNATURE_INVALID,
 * KEYRING_INVALID, PREREQUISITE_MISSING without gpgv) and name the index.
 */
export async function verifyIndexSignature(
  index: Uint8Array,
  signature: Uint8Array,
  keysDir: string,
  source: string,
  /** Where the key list is kept: with a root key, its index keys are the trusted ones. */
  stateDir?: string,
): Promise<{ fingerprint: string; keys: string }> {
  const files = readTrustedKeys(keysDir, stateDir);
  const keyring = keyringFor(files, keysDir);
  try {
    const { fingerprint } = await verifyWithGpgv(index, signature, keyring);
    return { fingerprint, keys: keysDigest(files) };
  } catch (error) {
    if (isRickError(error) && error.code === 'SIGNATURE_INVALID') {
      throw new RickError('SIGNATURE_INVALID', `${source}: ${error.message}`, {
        hint: `the index must be signed by a key in ${keysDir} (rick-bundle index --key); nothing was changed`,
        cause: error,
      });
    }
    throw error;
  }
}

function readTrustedKeys(keysDir: string, stateDir: string | undefined): KeyFile[] {
  const owner = requiredOwner();
  const options = owner === undefined ? {} : { requireOwner: owner };
  return stateDir === undefined
    ? readKeyFiles(keysDir, options)
    : trustedKeysFor(keysDir, stateDir, 'index', options).files;
}

/** sha256 over the trusted key files, names and bytes, in the order gpgv is given them. */
function keysDigest(files: readonly KeyFile[]): string {
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(`${file.path}\0${file.data.length}\0`);
    hash.update(file.data);
  }
  return hash.digest('hex');
}

/**
 * The digest of the trusted keys as they are now (with the same ownership
 * checks as a verification), or undefined when they cannot be read: then the
 * caller verifies, which reports why.
 */
export function trustedKeysDigest(keysDir: string, stateDir?: string): string | undefined {
  try {
    return keysDigest(readTrustedKeys(keysDir, stateDir));
  } catch {
    return undefined;
  }
}

/**
 * The URL of an index's signature: `.sig` appended to the path, the query
 * (a mirror's access token, say) and nothing else kept as it is. Appended to
 * the whole URL it would land in the query, and a static server would
 * answer the index itself there.
 */
export function indexSignatureUrl(indexUrl: string): string {
  const url = new URL(indexUrl);
  url.hash = '';
  url.pathname = `${url.pathname}.sig`;
  return url.href;
}

/** Fetches the index's binary detached signature (see indexSignatureUrl). */
export async function fetchIndexSignature(
  http: HttpClient,
  indexUrl: string,
  timeoutMs: number,
  source: string,
): Promise<Buffer> {
  const url = indexSignatureUrl(indexUrl);
  const response = await http.get(url, {
    headers: { 'user-agent': USER_AGENT, accept: 'application/octet-stream' },
    maxBytes: SIGNATURE_MAX_BYTES,
    timeoutMs,
    what: `signature of ${source}`,
  });
  if (response.status !== 200) {
    throw new RickError(
      response.status === 404 ? 'SIGNATURE_MISSING' : 'FEED_ERROR',
      `signature of ${source} (${url}): HTTP ${response.status}`,
      { hint: 'publish index.json.sig beside index.json; nothing was changed' },
    );
  }
  return response.body;
}

/**
 * The accepted index's serial and sha256, or undefined when none was
 * accepted yet. Only the serial is read from it: it was verified when it
 * was accepted, and the file is root's.
 */
export function readAcceptedIndex(
  paths: HostPaths,
): (AcceptedIndex & { bytes: Buffer }) | undefined {
  const file = acceptedIndexPath(paths);
  const bytes = readSmallFile(file);
  if (bytes === undefined) return undefined;
  let serial: unknown;
  try {
    serial = (JSON.parse(bytes.toString('utf8')) as { serial?: unknown }).serial;
  } catch {
    serial = undefined;
  }
  if (typeof serial !== 'number' || !Number.isSafeInteger(serial)) {
    throw new RickError('IO_ERROR', `${file} is not a release index`, {
      hint: 'remove it: the next tick accepts the current index again',
    });
  }
  return { serial, sha256: sha256Hex(bytes), bytes };
}

/** The signature kept with the accepted index, or undefined. */
export function readAcceptedSignature(paths: HostPaths): Buffer | undefined {
  return readKept(`${acceptedIndexPath(paths)}.sig`);
}

/**
 * Keeps a newly accepted index and its signature, each written atomically;
 * the signature first, so that a crash in between leaves the old index with
 * a signature that does not match it, which a later decision re-verifies
 * and refuses (then fetches the index whole), never a new index without one.
 */
export async function writeAcceptedIndex(
  paths: HostPaths,
  bytes: Buffer,
  signature: Uint8Array,
): Promise<void> {
  const file = acceptedIndexPath(paths);
  await writeFileAtomic(`${file}.sig`, Buffer.from(signature), 0o644);
  await writeFileAtomic(file, bytes, 0o644);
}

export interface DownloadedRelease {
  bundle: Buffer;
  signature: Buffer;
}

/**
 * Downloads a release's bundle and signature from the index's location and
 * checks the bundle against the index's size and sha256: a file that is not
 * the one the signed index names is refused before anything else reads it.
 */
export async function downloadIndexedRelease(
  http: HttpClient,
  indexUrl: string,
  release: IndexRelease,
  options: { maxBundleBytes: number; timeoutMs: number },
): Promise<DownloadedRelease> {
  const name = release.files.bundle;
  if (release.size > options.maxBundleBytes) {
    throw new RickError(
      'FEED_ERROR',
      `${name} is ${release.size} bytes by the index, more than MAX_BUNDLE_BYTES=${options.maxBundleBytes}`,
      { hint: 'raise MAX_BUNDLE_BYTES in rick.conf if the bundle is meant to be that large' },
    );
  }
  const bundleUrl = releaseFileUrl(indexUrl, release, name);
  const tgz = await http.get(bundleUrl, {
    headers: { 'user-agent': USER_AGENT, accept: 'application/octet-stream' },
    // Not one byte more than the index gives: endless data is cut off.
    maxBytes: release.size,
    timeoutMs: options.timeoutMs,
    what: `${name} (${release.size} bytes by the index)`,
  });
  if (tgz.status !== 200) {
    throw new RickError('FEED_ERROR', `${name} (${bundleUrl}): HTTP ${tgz.status}`, {
      hint: 'nothing was changed; the next timer tick tries again',
    });
  }
  if (tgz.body.length !== release.size) {
    throw new RickError(
      'FEED_ERROR',
      `${name} from ${bundleUrl} is ${tgz.body.length} bytes, the index says ${release.size}: refusing it`,
      { hint: 'the server does not serve the file the signed index names; nothing was changed' },
    );
  }
  const digest = sha256Hex(tgz.body);
  if (digest !== release.sha256) {
    throw new RickError(
      'FEED_ERROR',
      `${name} from ${bundleUrl} has sha256 ${digest}, the index says ${release.sha256}: refusing it`,
      { hint: 'the server does not serve the file the signed index names; nothing was changed' },
    );
  }
  const signatureUrl = releaseFileUrl(indexUrl, release, release.files.signature);
  const sig = await http.get(signatureUrl, {
    headers: { 'user-agent': USER_AGENT, accept: 'application/octet-stream' },
    maxBytes: SIGNATURE_MAX_BYTES,
    timeoutMs: options.timeoutMs,
    what: release.files.signature,
  });
  if (sig.status !== 200) {
    throw new RickError(
      sig.status === 404 ? 'SIGNATURE_MISSING' : 'FEED_ERROR',
      `${release.files.signature} (${signatureUrl}): HTTP ${sig.status}`,
      { hint: 'nothing was changed; the next timer tick tries again' },
    );
  }
  return { bundle: tgz.body, signature: sig.body };
}

/** The host's machine-id (`/etc/machine-id`), or undefined when it has none or an uninitialised one. */
export function readMachineId(root: string): string | undefined {
  const id = readKept(join(root, 'etc/machine-id'))?.toString('utf8').trim();
  return id !== undefined && /^[0-9a-f]{32}$/.test(id) ? id : undefined;
}
