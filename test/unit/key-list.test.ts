/**
 * The key list's pure parts: its form, the fingerprint computed from the
 * key packet (it must agree with openpgp.js), the serial sequence, the
 * expiry, and planning the next list.
 */

import * as openpgp from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { dearmor } from '../../src/bundle/armor.js';
import { generateSigningKey } from '../../src/bundle/openpgp.js';
import { isRickError } from '../../src/errors.js';
import {
  checkKeyListFresh,
  checkKeyListSequence,
  type KeyList,
  keysFor,
  parseKeyList,
  planKeyList,
  serializeKeyList,
} from '../../src/trust/key-list.js';
import { singlePublicKeyFingerprint } from '../../src/trust/openpgp-packets.js';

let a: { fingerprint: string; publicKey: string };
let b: { fingerprint: string; publicKey: string };
const issued = new Date('2026-01-01T00:00:00Z');
const DAY = 86_400_000;

beforeAll(async () => {
  const [ka, kb] = await Promise.all([
    generateSigningKey({ name: 'a', date: new Date('2024-01-01T00:00:00Z') }),
    generateSigningKey({ name: 'b', date: new Date('2024-01-01T00:00:00Z') }),
  ]);
  a = { fingerprint: ka.fingerprint, publicKey: ka.publicKeyArmored };
  b = { fingerprint: kb.fingerprint, publicKey: kb.publicKeyArmored };
});

function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (error) {
    if (isRickError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('not refused');
}

describe('key list', () => {
  it('computes the fingerprint openpgp.js gives, from the key packet', () => {
    expect(singlePublicKeyFingerprint(a.publicKey)).toBe(a.fingerprint);
  });

  it('refuses a block holding two primary keys', () => {
    const both = Buffer.concat([dearmor(a.publicKey)[0]!.data, dearmor(b.publicKey)[0]!.data]);
    expect(() =>
      singlePublicKeyFingerprint(openpgp.armor(openpgp.enums.armor.publicKey, both)),
    ).toThrow('must hold exactly one primary public key, not 2');
  });

  it('plans a first list and the next one: serial + 1, keys added and removed, roles kept', () => {
    const first = planKeyList(
      undefined,
      { add: [a], roles: ['bundles', 'index'], remove: [] },
      issued,
      365 * DAY,
    );
    expect(first.list.serial).toBe(1);
    expect(first.list.expires).toBe('2027-01-01T00:00:00Z');
    const next = planKeyList(
      first.list,
      { add: [b], roles: ['index'], remove: [a.fingerprint] },
      issued,
      DAY,
    );
    expect(next.list.serial).toBe(2);
    expect(next.notes).toEqual([`removed ${a.fingerprint}`, `added ${b.fingerprint} (index)`]);
    expect(keysFor(next.list, 'bundles')).toEqual([]);
    expect(keysFor(next.list, 'index').map((k) => k.fingerprint)).toEqual([b.fingerprint]);
    // What is written is what a host parses back.
    expect(parseKeyList(serializeKeyList(next.list), 'x')).toEqual(next.list);
  });

  it('refuses a public key that is not the listed fingerprint', () => {
    const { list } = planKeyList(
      undefined,
      { add: [a], roles: ['bundles'], remove: [] },
      issued,
      DAY,
    );
    const forged: KeyList = { ...list, keys: [{ ...list.keys[0]!, publicKey: b.publicKey }] };
    expect(refusal(() => parseKeyList(serializeKeyList(forged), 'the list'))).toEqual({
      code: 'KEY_LIST_INVALID',
      message: `the list: keys.0: the public key is ${b.fingerprint}, not the ${a.fingerprint} listed`,
    });
  });

  it('refuses an unknown field, and a list naming no key', () => {
    const { list } = planKeyList(
      undefined,
      { add: [a], roles: ['bundles'], remove: [] },
      issued,
      DAY,
    );
    expect(refusal(() => parseKeyList(JSON.stringify({ ...list, extra: 1 }), 'l')).code).toBe(
      'KEY_LIST_INVALID',
    );
    expect(refusal(() => parseKeyList(JSON.stringify({ ...list, keys: [] }), 'l'))).toEqual({
      code: 'KEY_LIST_INVALID',
      message: 'l (serial 1) names no key',
    });
  });

  it('judges the sequence: new, the same, older, the same serial with other bytes', () => {
    const { list } = planKeyList(
      undefined,
      { add: [a], roles: ['bundles'], remove: [] },
      issued,
      DAY,
    );
    const two = { ...list, serial: 2 };
    expect(checkKeyListSequence(two, 'x', undefined, 's')).toBe('new');
    expect(checkKeyListSequence(two, 'x', { serial: 1, sha256: 'y' }, 's')).toBe('new');
    expect(checkKeyListSequence(two, 'x', { serial: 2, sha256: 'x' }, 's')).toBe('same');
    expect(refusal(() => checkKeyListSequence(two, 'x', { serial: 3, sha256: 'z' }, 's'))).toEqual({
      code: 'KEY_LIST_ROLLBACK',
      message: 's has serial 2, older than the list accepted before (serial 3)',
    });
    expect(
      refusal(() => checkKeyListSequence(two, 'x', { serial: 2, sha256: 'z' }, 's')).code,
    ).toBe('KEY_LIST_ROLLBACK');
  });

  it('refuses a list from its expiry on', () => {
    const { list } = planKeyList(
      undefined,
      { add: [a], roles: ['bundles'], remove: [] },
      issued,
      DAY,
    );
    expect(() => checkKeyListFresh(list, new Date(issued.getTime() + DAY - 1), 's')).not.toThrow();
    expect(refusal(() => checkKeyListFresh(list, new Date(issued.getTime() + DAY), 's'))).toEqual({
      code: 'KEY_LIST_EXPIRED',
      message: 's (serial 1) expired at 2026-01-02T00:00:00Z',
    });
  });
});
