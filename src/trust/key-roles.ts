/**
 * The key list's names, shapes and the checks a host makes on every use of
 * the list it keeps. Free of the schema library on purpose: the installer
 * reads the kept list on its way to gpgv, before the rest of the program
 * loads (src/host/intake/signature.ts). Parsing what arrives from a feed is
 * src/trust/key-list.ts.
 */
import { RickError } from '../errors.js';

export const KEY_LIST_FILE = 'keys.json';
export const KEY_LIST_SIGNATURE_FILE = 'keys.json.sig';
export const HANDOVER_FILE = 'root-handover.json';
export const HANDOVER_SIGNATURE_FILE = 'root-handover.json.sig';
/** The root key's file in the trusted keys directory. */
export const ROOT_KEY_FILE = 'root.asc';

/** The most a key list or hand-over may weigh: a handful of keys. */
export const KEY_LIST_MAX_BYTES = 256 * 1024;

export const keyRoles = ['bundles', 'index'] as const;
export type KeyRole = (typeof keyRoles)[number];

export interface KeyListEntry {
  /** Upper-case hex fingerprint of the primary key. */
  fingerprint: string;
  /** What the key may sign. */
  roles: KeyRole[];
  /** The armored public key, so that a host verifies without fetching keys. */
  publicKey: string;
}

export interface KeyList {
  type: 'rick-key-list';
  schemaVersion: 1;
  /** Grows with every list; a host never goes back to a lower one. */
  serial: number;
  issued: string;
  /** A host refuses the list from this time on. */
  expires: string;
  keys: KeyListEntry[];
}

export interface RootHandover {
  type: 'rick-root-handover';
  schemaVersion: 1;
  /** The root key that signs this statement and hands over. */
  previous: string;
  /** The root key hosts trust from now on. */
  root: { fingerprint: string; publicKey: string };
  issued: string;
}

/** The keys of a list that may sign `role`. */
export function keysFor(list: KeyList, role: KeyRole): KeyListEntry[] {
  return list.keys.filter((k) => k.roles.includes(role));
}

/** Refuses a list past its expiry by the host's clock. */
export function checkKeyListFresh(list: KeyList, now: Date, source: string): void {
  if (now.getTime() >= Date.parse(list.expires)) {
    throw new RickError(
      'KEY_LIST_EXPIRED',
      `${source} (serial ${list.serial}) expired at ${list.expires}`,
      {
        hint: 'the root key holder signs a fresh list (rick-bundle keys --previous keys.json); nothing was changed',
      },
    );
  }
}
