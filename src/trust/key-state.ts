/**
 * What a host keeps of its key trust, and the keys it trusts from it:
 *
 *   /etc/rick/keys/root.asc                     the root key (by hand, root's, offline half elsewhere)
 *   /var/lib/rick/keys.json, keys.json.sig       the newest key list verified, byte for byte
 *   /var/lib/rick/root-handovers.json            the hand-overs accepted, in order (statement + signature)
 *
 * Without root.asc a host trusts every key file of /etc/rick/keys, as it
 * always has. With root.asc and a list accepted, it trusts for each role
 * (bundles, index) exactly the keys the list names for it, and no other key
 * file there; with root.asc and no list yet, the other key files, so that a
 * host given a root key keeps working until its feed first serves a list
 * (docs/keys.md).
 *
 * The kept list and hand-overs are trusted as they are, without a second
 * signature check on every use: they were verified when accepted, and
 * /var/lib/rick is root's, as /etc/rick/keys is. Reads are synchronous (a
 * few small files, read before gpgv starts: src/host/intake/signature.ts)
 * and take the kept JSON as rick wrote it; writing is src/trust/key-accept.ts.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type KeyFile, noKeysIn, readKeyFiles } from '../bundle/keyring.js';
import { describe, RickError } from '../errors.js';
import {
  checkKeyListFresh,
  type KeyList,
  type KeyRole,
  keysFor,
  ROOT_KEY_FILE,
  type RootHandover,
} from './key-roles.js';
import { singlePublicKeyFingerprint } from './openpgp-packets.js';

export function keyListPath(stateDir: string): string {
  return join(stateDir, 'keys.json');
}

export function handoversPath(stateDir: string): string {
  return join(stateDir, 'root-handovers.json');
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function readOptional(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RickError('IO_ERROR', `cannot read ${file}: ${describe(error)}`, { cause: error });
  }
}

export interface AcceptedList {
  list: KeyList;
  bytes: Buffer;
  sha256: string;
  path: string;
}

/** The key list accepted last, or undefined when none was. */
export function readAcceptedKeyList(stateDir: string): AcceptedList | undefined {
  const path = keyListPath(stateDir);
  const bytes = readOptional(path);
  if (bytes === undefined) return undefined;
  const list = keptJson<KeyList>(bytes, path, 'rick-key-list');
  if (!Array.isArray(list.keys) || typeof list.serial !== 'number') throw damaged(path);
  return { list, bytes, sha256: sha256Hex(bytes), path };
}

function damaged(path: string): RickError {
  return new RickError('IO_ERROR', `${path} is not what rick kept there`, {
    hint: 'remove it: the next update tick accepts the published key list again (docs/keys.md)',
  });
}

/** Kept JSON of the given type: checked whole when accepted, only recognised here. */
function keptJson<T extends { type: string }>(
  bytes: Buffer | string,
  path: string,
  type: string,
): T {
  let value: T;
  try {
    value = JSON.parse(bytes.toString()) as T;
  } catch {
    throw damaged(path);
  }
  if (typeof value !== 'object' || value === null || value.type !== type) throw damaged(path);
  return value;
}

/** One accepted hand-over: the statement's exact text and its signature (base64). */
export interface KeptHandover {
  statement: string;
  signature: string;
}

export function readKeptHandovers(stateDir: string): KeptHandover[] {
  const path = handoversPath(stateDir);
  const bytes = readOptional(path);
  if (bytes === undefined) return [];
  try {
    const value = JSON.parse(bytes.toString('utf8')) as unknown;
    if (
      Array.isArray(value) &&
      value.every(
        (h) =>
          typeof h === 'object' &&
          h !== null &&
          typeof (h as KeptHandover).statement === 'string' &&
          typeof (h as KeptHandover).signature === 'string',
      )
    ) {
      return value as KeptHandover[];
    }
  } catch {
    // Reported below.
  }
  throw new RickError('IO_ERROR', `${path} is not a list of accepted root hand-overs`, {
    hint: `restore it, or remove it to trust ${ROOT_KEY_FILE} alone again`,
  });
}

export interface RootKey {
  fingerprint: string;
  /** The armored public key. */
  publicKey: string;
  /** Where it comes from: root.asc, or the hand-over that named it. */
  source: string;
}

/**
 * The root key this host trusts: root.asc, then each accepted hand-over
 * that continues the chain from it. A hand-over that does not start at the
 * root reached so far (root.asc replaced by hand since) is passed over.
 */
export function currentRoot(rootFile: KeyFile, stateDir: string): RootKey {
  const publicKey = rootFile.data.toString('utf8');
  let fingerprint: string;
  try {
    fingerprint = singlePublicKeyFingerprint(publicKey);
  } catch (error) {
    throw new RickError('KEYRING_INVALID', `${rootFile.path}: ${describe(error)}`, {
      hint: 'root.asc holds the armored public root key alone (rick-bundle keygen writes one)',
    });
  }
  let root: RootKey = { fingerprint, publicKey, source: rootFile.path };
  for (const kept of readKeptHandovers(stateDir)) {
    const h = keptJson<RootHandover>(kept.statement, handoversPath(stateDir), 'rick-root-handover');
    if (h.previous === root.fingerprint) {
      root = {
        fingerprint: h.root.fingerprint,
        publicKey: h.root.publicKey,
        source: `the hand-over of ${h.issued} from ${h.previous}`,
      };
    }
  }
  return root;
}

/** The root key file among the trusted key files, if the host has one. */
export function rootKeyFile(files: readonly KeyFile[]): KeyFile | undefined {
  return files.find((f) => basename(f.path) === ROOT_KEY_FILE);
}

export interface TrustedKeys {
  files: KeyFile[];
  /** How the keys were chosen, for messages. */
  basis: string;
}

/**
 * The keys trusted to sign `role` on this host (see the module comment).
 * An expired list, or one naming no key for the role, is refused
 * (KEY_LIST_EXPIRED, KEY_LIST_INVALID): trusting nothing must not look like
 * trusting what was there before.
 */
export function trustedKeysFor(
  keysDir: string,
  stateDir: string,
  role: KeyRole,
  options: { requireOwner?: number; now?: Date } = {},
): TrustedKeys {
  const files = readKeyFiles(
    keysDir,
    options.requireOwner === undefined ? {} : { requireOwner: options.requireOwner },
  );
  const root = rootKeyFile(files);
  if (root === undefined) return { files, basis: keysDir };
  const accepted = readAcceptedKeyList(stateDir);
  if (accepted === undefined) {
    const others = files.filter((f) => f !== root);
    if (others.length === 0) {
      const error = noKeysIn(keysDir);
      throw new RickError('KEYRING_INVALID', `${error.message} but the root key, and no key list`, {
        hint: `the root key signs key lists, not ${role}: the update timer fetches keys.json from the feed, or import one with rick-install keys import keys.json`,
      });
    }
    return { files: others, basis: `${keysDir} (no key list accepted yet)` };
  }
  const source = `the key list ${accepted.path} (serial ${accepted.list.serial})`;
  checkKeyListFresh(accepted.list, options.now ?? new Date(), source);
  const entries = keysFor(accepted.list, role);
  if (entries.length === 0) {
    throw new RickError('KEY_LIST_INVALID', `${source} names no key that may sign ${role}`, {
      hint: 'the root key holder publishes a list naming one (rick-bundle keys --add KEY --roles bundles,index)',
    });
  }
  return {
    files: entries.map((e) => ({
      path: `${accepted.path} (${e.fingerprint})`,
      data: Buffer.from(e.publicKey, 'utf8'),
    })),
    basis: source,
  };
}

/** Key files and their directory must be root's on a host run as root; unchecked otherwise. */
export function ownerOption(): { requireOwner?: number } {
  return process.getuid?.() === 0 ? { requireOwner: 0 } : {};
}
