/**
 * The signed key list, `keys.json`, and the root hand-over statement,
 * `root-handover.json`: two levels of keys, as TUF separates its root role
 * from the roles it delegates to. An offline root key, the one a host is
 * given (`/etc/rick/keys/root.asc`), signs a short list of release keys
 * (fingerprint, armored public key, what each may sign: bundles, the index,
 * or both), with a serial that only grows and an expiry. The release keys
 * sign bundles and the index as before. A host trusts a release key only
 * while the newest valid list it has verified names it for that role, so a
 * key is added, rotated or revoked by publishing a new list, with no change
 * on any host.
 *
 * The root itself moves on by a hand-over: a statement naming the next root
 * key, signed by the current one (TUF's root rotation, a chain).
 *
 * Everything here is pure: parse, check and plan. Signatures are checked
 * before any of this is read (src/trust/key-verify.ts).
 */
import * as z from 'zod';
import { RickError } from '../errors.js';
import '../bundle/zod.js';
import { type KeyList, type KeyRole, keyRoles, type RootHandover } from './key-roles.js';
import { singlePublicKeyFingerprint } from './openpgp-packets.js';

export {
  checkKeyListFresh,
  HANDOVER_FILE,
  HANDOVER_SIGNATURE_FILE,
  KEY_LIST_FILE,
  KEY_LIST_MAX_BYTES,
  KEY_LIST_SIGNATURE_FILE,
  type KeyList,
  type KeyListEntry,
  type KeyRole,
  keyRoles,
  keysFor,
  ROOT_KEY_FILE,
  type RootHandover,
} from './key-roles.js';

const fingerprint = z
  .string()
  .regex(/^(?:[0-9A-F]{40}|[0-9A-F]{64})$/, 'must be an upper-case hex key fingerprint');
const publicKey = z
  .string()
  .min(1)
  .max(32 * 1024);

const buildSchemas = () => {
  const entry = z.strictObject({
    fingerprint,
    /** What the key may sign. */
    roles: z.array(z.enum(keyRoles)).min(1).max(keyRoles.length),
    /** The armored public key, so that a host verifies without fetching keys. */
    publicKey,
  });
  const list = z
    .strictObject({
      type: z.literal('rick-key-list'),
      schemaVersion: z.literal(1),
      /** Grows with every list; a host never goes back to a lower one. */
      serial: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
      issued: z.iso.datetime(),
      /** A host refuses the list from this time on. */
      expires: z.iso.datetime(),
      keys: z.array(entry).max(64),
    })
    .superRefine((l, ctx) => {
      if (Date.parse(l.expires) <= Date.parse(l.issued)) {
        ctx.addIssue({ code: 'custom', message: 'must be after issued', path: ['expires'] });
      }
      const seen = new Set<string>();
      l.keys.forEach((k, i) => {
        if (seen.has(k.fingerprint)) {
          ctx.addIssue({ code: 'custom', message: 'listed twice', path: ['keys', i] });
        }
        seen.add(k.fingerprint);
        if (new Set(k.roles).size !== k.roles.length) {
          ctx.addIssue({
            code: 'custom',
            message: 'a role named twice',
            path: ['keys', i, 'roles'],
          });
        }
      });
    });
  const handover = z.strictObject({
    type: z.literal('rick-root-handover'),
    schemaVersion: z.literal(1),
    /** The root key that signs this statement and hands over. */
    previous: fingerprint,
    /** The root key hosts trust from now on. */
    root: z.strictObject({ fingerprint, publicKey }),
    issued: z.iso.datetime(),
  });
  return { list, handover };
};

let schemas: ReturnType<typeof buildSchemas> | undefined;
const schemasNow = () => {
  schemas ??= buildSchemas();
  return schemas;
};

function parseWith<T>(
  schema: z.ZodType<T>,
  text: string,
  source: string,
  code: 'KEY_LIST_INVALID' | 'ROOT_HANDOVER_INVALID',
  what: string,
): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RickError(
      code,
      `${source} is not JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues
      .slice(0, 10)
      .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
      .join('; ');
    throw new RickError(code, `${source} is not a ${what}: ${problems}`, {
      hint: `it must be written by rick-bundle keys; nothing was changed`,
    });
  }
  return result.data;
}

/** The public key must be the very key the fingerprint names, and that key alone. */
function checkKeyMaterial(
  fpr: string,
  armored: string,
  where: string,
  code: 'KEY_LIST_INVALID' | 'ROOT_HANDOVER_INVALID',
): void {
  let actual: string;
  try {
    actual = singlePublicKeyFingerprint(armored);
  } catch (error) {
    throw new RickError(
      code,
      `${where}: the public key ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (actual !== fpr) {
    throw new RickError(code, `${where}: the public key is ${actual}, not the ${fpr} listed`);
  }
}

/**
 * Parses a key list whose signature has been checked: its form, a public
 * key that is each listed fingerprint's own, and at least one key (a list
 * naming none would leave the host trusting nothing).
 */
export function parseKeyList(text: string, source: string): KeyList {
  const list = parseWith(schemasNow().list, text, source, 'KEY_LIST_INVALID', 'rick key list');
  if (list.keys.length === 0) {
    throw new RickError('KEY_LIST_INVALID', `${source} (serial ${list.serial}) names no key`, {
      hint: 'a list must name at least one release key (rick-bundle keys refuses to write one that does not); nothing was changed',
    });
  }
  list.keys.forEach((k, i) => {
    checkKeyMaterial(k.fingerprint, k.publicKey, `${source}: keys.${i}`, 'KEY_LIST_INVALID');
  });
  return list;
}

/** Parses a hand-over statement whose signature has been checked. */
export function parseHandover(text: string, source: string): RootHandover {
  const h = parseWith(
    schemasNow().handover,
    text,
    source,
    'ROOT_HANDOVER_INVALID',
    'rick root hand-over',
  );
  checkKeyMaterial(
    h.root.fingerprint,
    h.root.publicKey,
    `${source}: root`,
    'ROOT_HANDOVER_INVALID',
  );
  if (h.root.fingerprint === h.previous) {
    throw new RickError('ROOT_HANDOVER_INVALID', `${source} hands ${h.previous} over to itself`);
  }
  return h;
}

/** Canonical bytes: keys by fingerprint, roles in order, two-space indent, final newline. */
export function serializeKeyList(list: KeyList): string {
  const sorted: KeyList = {
    type: list.type,
    schemaVersion: list.schemaVersion,
    serial: list.serial,
    issued: list.issued,
    expires: list.expires,
    keys: [...list.keys]
      .sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1))
      .map((k) => ({
        fingerprint: k.fingerprint,
        roles: keyRoles.filter((r) => k.roles.includes(r)),
        publicKey: k.publicKey,
      })),
  };
  return `${JSON.stringify(sorted, null, 2)}\n`;
}

export function serializeHandover(h: RootHandover): string {
  return `${JSON.stringify(
    {
      type: h.type,
      schemaVersion: h.schemaVersion,
      previous: h.previous,
      root: { fingerprint: h.root.fingerprint, publicKey: h.root.publicKey },
      issued: h.issued,
    },
    null,
    2,
  )}\n`;
}

/** What the host has accepted before, to judge a list against. */
export interface AcceptedKeyList {
  serial: number;
  sha256: string;
}

/**
 * 'same' for the very list accepted last, 'new' for a higher serial.
 * A lower serial, or the same serial with other bytes, is refused: an older
 * list could bring back a key that was removed.
 */
export function checkKeyListSequence(
  list: KeyList,
  sha256: string,
  accepted: AcceptedKeyList | undefined,
  source: string,
): 'new' | 'same' {
  if (accepted === undefined || list.serial > accepted.serial) return 'new';
  if (list.serial === accepted.serial && sha256 === accepted.sha256) return 'same';
  throw new RickError(
    'KEY_LIST_ROLLBACK',
    list.serial === accepted.serial
      ? `${source} has serial ${list.serial}, the same as the list accepted before, with other contents`
      : `${source} has serial ${list.serial}, older than the list accepted before (serial ${accepted.serial})`,
    {
      hint: 'an older list could bring back a removed key; publish a list with a higher serial (rick-bundle keys --previous); nothing was changed',
    },
  );
}

/** ISO time without milliseconds when there are none. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

export interface KeyListChanges {
  add: Array<{ fingerprint: string; publicKey: string }>;
  /** The roles of the keys added (default both). */
  roles: KeyRole[];
  remove: string[];
}

/**
 * The next list: the previous one (or none, for the first) with keys added
 * and removed, serial previous + 1, issued at `issued`, valid `validForMs`.
 * Refuses what changes nothing as it was meant (a key added twice, one
 * removed that is not listed) and a list naming no key. Returns what
 * changed, one line each.
 */
export function planKeyList(
  previous: KeyList | undefined,
  changes: KeyListChanges,
  issued: Date,
  validForMs: number,
): { list: KeyList; notes: string[] } {
  const keys = (previous?.keys ?? []).map((k) => ({ ...k, roles: [...k.roles] }));
  const notes: string[] = [];
  for (const fpr of changes.remove) {
    const at = keys.findIndex((k) => k.fingerprint === fpr);
    if (at < 0) {
      throw new RickError('USAGE', `--remove ${fpr}: no such key in the list`, {
        hint: `the list names ${keys.map((k) => k.fingerprint).join(', ') || 'no key'}`,
      });
    }
    keys.splice(at, 1);
    notes.push(`removed ${fpr}`);
  }
  for (const add of changes.add) {
    const existing = keys.find((k) => k.fingerprint === add.fingerprint);
    const roles = keyRoles.filter((r) => changes.roles.includes(r));
    if (existing) {
      if (
        roles.every((r) => existing.roles.includes(r)) &&
        roles.length === existing.roles.length
      ) {
        throw new RickError(
          'USAGE',
          `--add: ${add.fingerprint} is already listed, for ${existing.roles.join(' and ')}`,
          { hint: 'leave --add out, or give other --roles to change what it may sign' },
        );
      }
      existing.roles = roles;
      notes.push(`${add.fingerprint} may now sign ${roles.join(' and ')}`);
      continue;
    }
    keys.push({ fingerprint: add.fingerprint, roles, publicKey: add.publicKey });
    notes.push(`added ${add.fingerprint} (${roles.join(' and ')})`);
  }
  if (keys.length === 0) {
    throw new RickError('USAGE', 'the new list would name no key: hosts would refuse it', {
      hint: 'add the next release key (--add) in the same run as the last one is removed',
    });
  }
  const list: KeyList = {
    type: 'rick-key-list',
    schemaVersion: 1,
    serial: (previous?.serial ?? 0) + 1,
    issued: isoTime(issued.getTime()),
    expires: isoTime(issued.getTime() + validForMs),
    keys,
  };
  // The host's own parser is the judge of what is written.
  return { list: parseKeyList(serializeKeyList(list), 'the new key list'), notes };
}

/** The statement by which root `previous` hands over to `next`. */
export function planHandover(
  previous: string,
  next: { fingerprint: string; publicKey: string },
  issued: Date,
): RootHandover {
  const h: RootHandover = {
    type: 'rick-root-handover',
    schemaVersion: 1,
    previous,
    root: next,
    issued: isoTime(issued.getTime()),
  };
  return parseHandover(serializeHandover(h), 'the new hand-over');
}
