/**
 * Accepting a key list or a root hand-over on a host: gpgv checks its
 * detached signature against the root key this host trusts (and that key
 * alone) before anything in it is parsed; then the list's serial and expiry
 * are judged against the list kept (src/trust/key-state.ts), and only then
 * is it kept. A refusal changes nothing.
 *
 * `refreshKeyTrust` is what the update tick calls, once per feed, with a
 * way to fetch a file published beside the index or among the release's
 * assets: the hand-over first (a list may be signed by the root it names),
 * then the list.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readKeyFiles } from '../bundle/keyring.js';
import { describe, isRickError, RickError } from '../errors.js';
import { keyringFor, verifyWithGpgv } from '../host/intake/gpgv.js';
import { writeFileAtomic } from '../host/state.js';
import {
  type AcceptedKeyList,
  checkKeyListFresh,
  checkKeyListSequence,
  HANDOVER_FILE,
  HANDOVER_SIGNATURE_FILE,
  KEY_LIST_FILE,
  KEY_LIST_MAX_BYTES,
  KEY_LIST_SIGNATURE_FILE,
  type KeyList,
  parseHandover,
  parseKeyList,
  ROOT_KEY_FILE,
  type RootHandover,
} from './key-list.js';
import {
  currentRoot,
  handoversPath,
  type KeptHandover,
  keyListPath,
  type RootKey,
  readAcceptedKeyList,
  readKeptHandovers,
  rootKeyFile,
  sha256Hex,
  trustedKeysFor,
} from './key-state.js';

/** Keeps a newly accepted list: its signature first, then the list, each atomically. */
async function writeAcceptedKeyList(
  stateDir: string,
  bytes: Buffer,
  signature: Uint8Array,
): Promise<void> {
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  const path = keyListPath(stateDir);
  await writeFileAtomic(`${path}.sig`, Buffer.from(signature), 0o644);
  await writeFileAtomic(path, bytes, 0o644);
}

async function writeKeptHandovers(
  stateDir: string,
  handovers: readonly KeptHandover[],
): Promise<void> {
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  await writeFileAtomic(handoversPath(stateDir), `${JSON.stringify(handovers, null, 2)}\n`, 0o644);
}

export interface TrustPaths {
  /** /etc/rick/keys */
  keysDir: string;
  /** /var/lib/rick */
  stateDir: string;
}

export interface AcceptOptions {
  now: Date;
  requireOwner?: number;
}

/** The root this host trusts, or undefined without root.asc (a host on release keys alone). */
export function readCurrentRoot(paths: TrustPaths, options: AcceptOptions): RootKey | undefined {
  const files = readKeyFiles(
    paths.keysDir,
    options.requireOwner === undefined ? {} : { requireOwner: options.requireOwner },
  );
  const root = rootKeyFile(files);
  return root === undefined ? undefined : currentRoot(root, paths.stateDir);
}

function requireRoot(paths: TrustPaths, options: AcceptOptions, what: string): RootKey {
  const root = readCurrentRoot(paths, options);
  if (root === undefined) {
    throw new RickError(
      'KEYRING_INVALID',
      `no root key ${paths.keysDir}/${ROOT_KEY_FILE}: this host cannot judge ${what}`,
      {
        hint: `put the root public key in ${paths.keysDir}/${ROOT_KEY_FILE} first (docs/keys.md); nothing was changed`,
      },
    );
  }
  return root;
}

/** gpgv over `bytes` with the root key alone; `code` names the refusal. */
async function verifyByRoot(
  bytes: Uint8Array,
  signature: Uint8Array,
  root: RootKey,
  source: string,
  code: 'KEY_LIST_UNTRUSTED' | 'ROOT_HANDOVER_INVALID',
): Promise<void> {
  const keyring = keyringFor(
    [{ path: root.source, data: Buffer.from(root.publicKey, 'utf8') }],
    root.source,
  );
  try {
    const { fingerprint } = await verifyWithGpgv(bytes, signature, keyring);
    if (fingerprint !== root.fingerprint) throw new Error(`signed by ${fingerprint}`);
  } catch (error) {
    if (isRickError(error) && error.code === 'PREREQUISITE_MISSING') throw error;
    throw new RickError(
      code,
      `${source} is not signed by the root key ${root.fingerprint} this host trusts: ${describe(error)}`,
      {
        hint: 'only the root key signs key lists and hand-overs (rick-bundle keys --root-key), not a release key; nothing was changed',
        cause: error,
      },
    );
  }
}

export type Outcome = 'new' | 'same';

/**
 * Verifies, judges and keeps a key list. Refused: not signed by the root
 * (KEY_LIST_UNTRUSTED), malformed or naming no key (KEY_LIST_INVALID), an
 * older serial or the same serial with other bytes (KEY_LIST_ROLLBACK),
 * expired (KEY_LIST_EXPIRED).
 */
export async function acceptKeyList(
  paths: TrustPaths,
  bytes: Buffer,
  signature: Uint8Array,
  source: string,
  options: AcceptOptions,
): Promise<{ list: KeyList; outcome: Outcome }> {
  const root = requireRoot(paths, options, source);
  const kept = readAcceptedKeyList(paths.stateDir);
  const sha256 = sha256Hex(bytes);
  // The very list kept: nothing to check again or write.
  if (kept?.sha256 === sha256) {
    checkKeyListFresh(kept.list, options.now, source);
    return { list: kept.list, outcome: 'same' };
  }
  await verifyByRoot(bytes, signature, root, source, 'KEY_LIST_UNTRUSTED');
  const list = parseKeyList(bytes.toString('utf8'), source);
  const accepted: AcceptedKeyList | undefined = kept && {
    serial: kept.list.serial,
    sha256: kept.sha256,
  };
  const outcome = checkKeyListSequence(list, sha256, accepted, source);
  checkKeyListFresh(list, options.now, source);
  await writeAcceptedKeyList(paths.stateDir, bytes, signature);
  return { list, outcome };
}

/**
 * Verifies and keeps a root hand-over: signed by the root this host trusts
 * now and naming it as the previous root. One already accepted is 'same'.
 */
export async function acceptHandover(
  paths: TrustPaths,
  bytes: Buffer,
  signature: Uint8Array,
  source: string,
  options: AcceptOptions,
): Promise<{ handover: RootHandover | undefined; outcome: Outcome }> {
  const text = bytes.toString('utf8');
  const kept = readKeptHandovers(paths.stateDir);
  if (kept.some((h) => h.statement === text)) return { handover: undefined, outcome: 'same' };
  const root = requireRoot(paths, options, source);
  await verifyByRoot(bytes, signature, root, source, 'ROOT_HANDOVER_INVALID');
  const handover = parseHandover(text, source);
  if (handover.previous !== root.fingerprint) {
    throw new RickError(
      'ROOT_HANDOVER_INVALID',
      `${source} hands over from ${handover.previous}, not from the root ${root.fingerprint} this host trusts`,
      { hint: 'nothing was changed' },
    );
  }
  await writeKeptHandovers(paths.stateDir, [
    ...kept,
    { statement: text, signature: Buffer.from(signature).toString('base64') },
  ]);
  return { handover, outcome: 'new' };
}

/** Fetches a file published beside the index or among a release's assets; undefined when absent. */
export type FetchPublished = (name: string) => Promise<Buffer | undefined>;

/**
 * The update tick's one call: on a host with a root key, takes the
 * hand-over (if one is published) and the key list (if one is published)
 * before anything they vouch for is verified. A host without root.asc asks
 * for nothing. A list that is not published leaves the kept one in force.
 */
export async function refreshKeyTrust(
  paths: TrustPaths,
  fetch: FetchPublished,
  log: (line: string) => void,
  options: AcceptOptions,
): Promise<void> {
  if (readCurrentRoot(paths, options) === undefined) return;
  const pair = async (name: string, sigName: string) => {
    const bytes = await fetch(name);
    if (bytes === undefined) return undefined;
    const signature = await fetch(sigName);
    if (signature === undefined) {
      throw new RickError('SIGNATURE_MISSING', `${name} is published without ${sigName}`, {
        hint: `publish ${sigName} beside ${name}; nothing was changed`,
      });
    }
    return { bytes, signature };
  };
  const handover = await pair(HANDOVER_FILE, HANDOVER_SIGNATURE_FILE);
  if (handover) {
    const { handover: h, outcome } = await acceptHandover(
      paths,
      handover.bytes,
      handover.signature,
      `the published ${HANDOVER_FILE}`,
      options,
    );
    if (outcome === 'new' && h) {
      log(`root key handed over from ${h.previous} to ${h.root.fingerprint}`);
    }
  }
  const list = await pair(KEY_LIST_FILE, KEY_LIST_SIGNATURE_FILE);
  if (!list) {
    const kept = readAcceptedKeyList(paths.stateDir);
    if (kept) checkKeyListFresh(kept.list, options.now, `the key list kept in ${kept.path}`);
    log(
      kept
        ? `no ${KEY_LIST_FILE} published: keeping the key list of serial ${kept.list.serial}`
        : `no ${KEY_LIST_FILE} published and none accepted yet: trusting the key files of ${paths.keysDir}`,
    );
    return;
  }
  const { list: accepted, outcome } = await acceptKeyList(
    paths,
    list.bytes,
    list.signature,
    `the published ${KEY_LIST_FILE}`,
    options,
  );
  if (outcome === 'new') {
    log(
      `accepted key list serial ${accepted.serial} (expires ${accepted.expires}): ${accepted.keys
        .map((k) => `${k.fingerprint} for ${k.roles.join(' and ')}`)
        .join(', ')}`,
    );
    await dropFloorOfUntrustedIndex(paths, log, options);
  }
}

/**
 * The kept index (src/feed/index-client.ts keeps it as release-index.json)
 * is the host's rollback floor only while a key the list names for the
 * index vouches for it. An index signed by a key the new list removed, a
 * stolen one, may carry a serial so high that every honest index would look
 * older: it is dropped, as TUF deletes its timestamp and snapshot metadata
 * when their keys rotate (recovery from a fast-forward attack). The index
 * the tick verifies next becomes the floor.
 */
async function dropFloorOfUntrustedIndex(
  paths: TrustPaths,
  log: (line: string) => void,
  options: AcceptOptions,
): Promise<void> {
  const file = join(paths.stateDir, 'release-index.json');
  let bytes: Buffer;
  let signature: Buffer;
  try {
    bytes = readFileSync(file);
    signature = readFileSync(`${file}.sig`);
  } catch {
    return;
  }
  const trusted = trustedKeysFor(paths.keysDir, paths.stateDir, 'index', {
    ...(options.requireOwner === undefined ? {} : { requireOwner: options.requireOwner }),
    now: options.now,
  });
  try {
    await verifyWithGpgv(bytes, signature, keyringFor(trusted.files, trusted.basis));
    return;
  } catch (error) {
    if (!isRickError(error) || error.code !== 'SIGNATURE_INVALID') throw error;
  }
  let serial = 'unknown';
  try {
    serial = String((JSON.parse(bytes.toString('utf8')) as { serial?: unknown }).serial);
  } catch {
    // Named as unknown.
  }
  await rm(`${file}.sig`, { force: true });
  await rm(file, { force: true });
  log(
    `the kept release index (serial ${serial}) is signed by no key the new list names for the index: it is no longer the rollback floor`,
  );
}

/**
 * `rick-install keys import FILE`: a key list or a root hand-over taken by
 * hand (a host cut off from its feed, or more than one hand-over behind),
 * judged exactly as the update tick judges one it fetched. Which of the two
 * FILE is only chooses the check; both start with the root's signature.
 */
export async function importKeyDocument(
  paths: TrustPaths,
  file: string,
  signatureFile: string,
  options: AcceptOptions,
): Promise<string> {
  const { readFileSync } = await import('node:fs');
  const read = (path: string, what: string, code: 'INPUT_NOT_FOUND' | 'SIGNATURE_MISSING') => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new RickError(code, `cannot read ${what} ${path}: ${describe(error)}`, {
        hint: 'nothing was changed',
      });
    }
  };
  const bytes = read(file, 'key list or hand-over', 'INPUT_NOT_FOUND');
  if (bytes.length > KEY_LIST_MAX_BYTES) {
    throw new RickError(
      'KEY_LIST_INVALID',
      `${file} is ${bytes.length} bytes, more than a key list may be`,
    );
  }
  const signature = read(signatureFile, 'signature', 'SIGNATURE_MISSING');
  let type: unknown;
  try {
    type = (JSON.parse(bytes.toString('utf8')) as { type?: unknown }).type;
  } catch {
    type = undefined;
  }
  if (type === 'rick-root-handover') {
    const { handover, outcome } = await acceptHandover(paths, bytes, signature, file, options);
    return outcome === 'same' || !handover
      ? `${file}: this hand-over was accepted before; nothing changed`
      : `root key handed over from ${handover.previous} to ${handover.root.fingerprint}`;
  }
  const { list, outcome } = await acceptKeyList(paths, bytes, signature, file, options);
  const lines: string[] = [];
  if (outcome === 'new')
    await dropFloorOfUntrustedIndex(paths, (line) => lines.push(line), options);
  const floor = lines.map((line) => `\n${line}`).join('');
  return outcome === 'same'
    ? `${file}: the key list of serial ${list.serial} is the one kept; nothing changed`
    : `accepted key list serial ${list.serial} (expires ${list.expires}): ${list.keys
        .map((k) => `${k.fingerprint} for ${k.roles.join(' and ')}`)
        .join(', ')}${floor}`;
}
