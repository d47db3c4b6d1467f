/**
 * `rick-bundle verify <bundle.tgz> --keyring PATH`: reads a bundle as the
 * host installer does, so that what passes here installs there. The same
 * keyring rules (src/bundle/keyring.ts and the host's keyringFor: no file
 * others can write, public keys only, a private key refused), the detached
 * signature first against those keys only, then the archive and its
 * manifest with the host's limits, and last the file name against the
 * signed manifest (`<name>-<version>.tgz`, or `--expect NAME@VERSION`):
 * a release asset whose name says another bundle or version is
 * BUNDLE_MISMATCH here as it is on every host.
 *
 * The build record (installer/build-record.json: toolchain, pinned images)
 * is shown when the bundle has one. Its bytes are checked against the
 * signed manifest like every file's; its contents are not judged, because
 * hosts ignore it and a bundle passes here exactly when it installs there.
 */
import { basename, resolve } from 'node:path';
import type { PublicKey } from 'openpgp';
import { defaultArchiveLimits } from '../bundle/archive.js';
import { BUILD_RECORD_PATH, type BuildRecord, parseBuildRecord } from '../bundle/build-record.js';
import type { Manifest } from '../bundle/manifest.js';
import type { Output } from '../cli/run.js';
import { RickError } from '../errors.js';
import { checkIdentity, expectationFor, parseExpectArgument } from '../host/intake/identity.js';
import { readInput } from './sign.js';

export interface VerifyDeps {
  output: Output;
  cwd: string;
  /** Judges a key list's expiry; default the system clock. */
  now?: () => Date;
}

export interface VerifyOptions {
  bundle: string;
  keyring: string;
  signature?: string;
  /** `NAME@VERSION` the bundle must hold, when its file name does not say. */
  expect?: string;
  /**
   * A key list (keys.json, its .sig beside it) signed by a key of `keyring`
   * (the root key): the bundle must be signed by a key it names for bundles,
   * as on a host with root.asc.
   */
  keyList?: string;
}

/** The keys a key list names for bundles, once the list's signature by the root is checked (openpgp.js). */
async function bundleKeysOfList(file: string, rootKeys: readonly PublicKey[], now: Date) {
  const { parsePublicKeys, verifyDetached } = await import('../bundle/openpgp.js');
  const { keysFor, parseKeyList, checkKeyListFresh } = await import('../trust/key-list.js');
  const bytes = await readInput(file, 'key list');
  const signature = await readInput(`${file}.sig`, 'signature of the key list').catch(() => {
    throw new RickError('SIGNATURE_MISSING', `no signature ${file}.sig beside the key list`);
  });
  try {
    await verifyDetached(bytes, signature, rootKeys);
  } catch (error) {
    throw new RickError(
      'KEY_LIST_UNTRUSTED',
      `the key list ${file} is not signed by a key of --keyring: ${error instanceof Error ? error.message : String(error)}`,
      { hint: 'with --key-list, --keyring is the root public key (root.asc)' },
    );
  }
  const list = parseKeyList(bytes.toString('utf8'), `the key list ${file}`);
  checkKeyListFresh(list, now, `the key list ${file}`);
  const entries = keysFor(list, 'bundles');
  if (entries.length === 0) {
    throw new RickError(
      'KEY_LIST_INVALID',
      `the key list ${file} names no key that may sign bundles`,
    );
  }
  const keys = [];
  for (const e of entries) keys.push(...(await parsePublicKeys(Buffer.from(e.publicKey), file)));
  return keys;
}

export async function verifyBundle(
  options: VerifyOptions,
  deps: VerifyDeps,
): Promise<{ fingerprint: string; manifest: Manifest; buildRecord?: ShownBuildRecord }> {
  const bundle = resolve(deps.cwd, options.bundle);
  const fileName = basename(bundle);
  // Refused before anything is read, as on a host: a file must say what it holds.
  const expectation = expectationFor(
    fileName,
    options.expect === undefined ? undefined : parseExpectArgument(options.expect),
  );
  const signaturePath = options.signature ? resolve(deps.cwd, options.signature) : `${bundle}.sig`;
  const keyringPath = resolve(deps.cwd, options.keyring);
  const { readKeyFiles } = await import('../bundle/keyring.js');
  const { keyringFor } = await import('../host/intake/gpgv.js');
  const keyFiles = readKeyFiles(keyringPath);
  // The host's judgement of the key files: public key packets only.
  keyringFor(keyFiles, keyringPath);
  const data = await readInput(bundle, 'bundle');
  if (data.length > defaultArchiveLimits.maxCompressedBytes) {
    throw new RickError(
      'BUNDLE_INVALID',
      `bundle ${bundle} is ${data.length} bytes, more than the limit of ${defaultArchiveLimits.maxCompressedBytes}`,
    );
  }
  let signature: Buffer;
  try {
    signature = await readInput(signaturePath, 'signature');
  } catch (error) {
    throw new RickError('SIGNATURE_MISSING', (error as Error).message, {
      hint: 'sign it with `rick-bundle sign` or pass --signature FILE',
    });
  }
  const { parsePublicKeys, verifyDetached } = await import('../bundle/openpgp.js');
  const { noKeysIn } = await import('../bundle/keyring.js');
  const { parseBundleArchive } = await import('../bundle/archive.js');
  const keys = [];
  for (const file of keyFiles) keys.push(...(await parsePublicKeys(file.data, file.path)));
  if (keys.length === 0) throw noKeysIn(keyringPath);
  const verified = await verifyDetached(
    data,
    signature,
    options.keyList === undefined
      ? keys
      : await bundleKeysOfList(
          resolve(deps.cwd, options.keyList),
          keys,
          deps.now?.() ?? new Date(),
        ),
  );
  // Only a bundle with a good signature is opened.
  const { manifest, files } = parseBundleArchive(data, defaultArchiveLimits);
  checkIdentity({ bundle: manifest.name, version: manifest.version }, expectation, fileName);
  const record = files.get(BUILD_RECORD_PATH);
  if (record === undefined) return { fingerprint: verified.fingerprint, manifest };
  const parsed = parseBuildRecord(record);
  return {
    fingerprint: verified.fingerprint,
    manifest,
    buildRecord: parsed.ok ? { record: parsed.record } : { problem: parsed.problem },
  };
}

/** The build record as this rick-bundle reads it, or why it cannot (a newer one, say). */
export type ShownBuildRecord = { record: BuildRecord } | { problem: string };
