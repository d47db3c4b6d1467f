/**
 * The installer's reading of gpgv's status lines and of the key and
 * signature framing around it (src/host/intake/gpgv.ts, src/bundle/armor.ts). The real
 * gpgv is exercised in test/integration/intake-gpgv.test.ts; these are the
 * verdicts for status lines that are hard to provoke with real keys.
 */
import { describe, expect, it } from 'vitest';
import { dearmor } from '../../src/bundle/armor.js';
import { decideGpgvStatus, keyringFor, signatureTypes } from '../../src/host/intake/gpgv.js';
import { refusal } from '../helpers/hostile-tar.js';

const FPR = 'F07B71E19E7D77C8208702AD8EE46A759C529940';
const good = (hash = '10', sigClass = '00') =>
  [
    '[GNUPG:] NEWSIG',
    `[GNUPG:] GOODSIG 8EE46A759C529940 rick test`,
    `[GNUPG:] VALIDSIG ${FPR} 2026-11-22 1795344761 0 4 0 22 ${hash} ${sigClass} ${FPR}`,
  ].join('\n');
const unknown =
  '[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG FCA415C8AB113731 22 10 00 1795344761 9 5BA1C2354D78D6BC06572499FCA415C8AB113731\n[GNUPG:] NO_PUBKEY FCA415C8AB113731';

describe('decideGpgvStatus', () => {
  it('accepts a good binary signature by a trusted key, naming the primary key and the time', () => {
    const verdict = decideGpgvStatus(good(), '');
    expect(verdict.fingerprint).toBe(FPR);
    expect(verdict.created?.toISOString()).toBe('2026-11-22T10:52:41.000Z');
  });

  it('passes over a co-signature by a key that is not trusted', () => {
    expect(decideGpgvStatus(`${good()}\n${unknown}`, '').fingerprint).toBe(FPR);
  });

  it('refuses a signature by a key that is not trusted, naming the key', () => {
    const error = refusal(() => decideGpgvStatus(unknown, ''));
    expect(error.code).toBe('SIGNATURE_INVALID');
    expect(error.message).toBe(
      'no valid signature by a trusted key (key FCA415C8AB113731: not a trusted key)',
    );
  });

  it('refuses a good signature next to a bad one', () => {
    const error = refusal(() =>
      decideGpgvStatus(`${good()}\n[GNUPG:] NEWSIG\n[GNUPG:] BADSIG 8EE46A759C529940 x`, ''),
    );
    expect(error.message).toMatch(/key 8EE46A759C529940: BAD signature/);
  });

  it.each([
    ['EXPKEYSIG', 'the key has expired'],
    ['REVKEYSIG', 'the key is revoked'],
    ['EXPSIG', 'the signature has expired'],
  ])('refuses %s', (keyword, text) => {
    const status = `[GNUPG:] NEWSIG\n[GNUPG:] ${keyword} 8EE46A759C529940 x\n[GNUPG:] VALIDSIG ${FPR} 2026-11-22 1795344761 0 4 0 22 10 00 ${FPR}`;
    expect(refusal(() => decideGpgvStatus(status, '')).message).toContain(text);
  });

  it.each([
    ['1', 'MD5'],
    ['2', 'SHA-1'],
    ['3', 'RIPEMD-160'],
  ])('refuses hash algorithm %s (%s)', (hash) => {
    expect(refusal(() => decideGpgvStatus(good(hash), '')).message).toContain(
      `made with weak hash algorithm ${hash}`,
    );
  });

  it('refuses a text-mode signature even when it is good', () => {
    const error = refusal(() => decideGpgvStatus(good('10', '01'), ''));
    expect(error.message).toBe('signature type 0x01 is not a binary document signature');
  });

  it('refuses input without OpenPGP data, and a status without any signature', () => {
    expect(refusal(() => decideGpgvStatus('[GNUPG:] NODATA 1\n', '')).message).toBe(
      'not an OpenPGP signature: gpgv found no OpenPGP data in it',
    );
    expect(refusal(() => decideGpgvStatus('', 'some failure')).message).toBe(
      'the signature file holds no signature (gpgv: some failure)',
    );
  });

  it('refuses a signature gpgv could not check for another reason', () => {
    const status = '[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG 8EE46A759C529940 22 10 00 1795344761 4 -';
    expect(refusal(() => decideGpgvStatus(status, '')).message).toContain(
      'key 8EE46A759C529940: cannot be checked (gpgv reason 4)',
    );
  });
});

describe('signatureTypes', () => {
  // A v4 signature packet (old format, tag 2, one-byte length) of the given type.
  const packet = (type: number) => Buffer.from([0x88, 0x03, 0x04, type, 0x16]);

  it('reads the type of every signature packet', () => {
    expect(signatureTypes(packet(0x00))).toEqual([0]);
    expect(signatureTypes(Buffer.concat([packet(0x00), packet(0x01)]))).toEqual([0, 1]);
    // New-format header, tag 2.
    expect(signatureTypes(Buffer.from([0xc2, 0x03, 0x04, 0x01, 0x16]))).toEqual([1]);
  });

  it('cannot tell for anything that is not packets (gpgv then judges)', () => {
    expect(signatureTypes(Buffer.from('garbage'))).toBeUndefined();
    expect(signatureTypes(Buffer.from([0x88, 0x09, 0x04]))).toBeUndefined();
  });
});

describe('dearmor and keyringFor', () => {
  const key = Buffer.from([0x99, 0x00, 0x01, 0x04]);
  const armored = (data: Buffer, type = 'PGP PUBLIC KEY BLOCK', crc?: string) =>
    `-----BEGIN ${type}-----\nComment: test\n\n${data.toString('base64')}\n${crc ?? ''}\n-----END ${type}-----\n`;

  it('decodes an armored public key block and keeps binary keys as they are', () => {
    expect(dearmor(armored(key))[0]?.data.equals(key)).toBe(true);
    const files = [
      { path: '/k/a.asc', data: Buffer.from(armored(key)) },
      { path: '/k/b.gpg', data: key },
    ];
    expect(keyringFor(files, '/k').equals(Buffer.concat([key, key]))).toBe(true);
  });

  it('checks the CRC-24 when there is one', () => {
    // The checksum GnuPG's `gpg --enarmor` wrote for these four bytes.
    expect(dearmor(armored(key, undefined, '=A8zz'))[0]?.data.equals(key)).toBe(true);
    expect(() => dearmor(armored(key, undefined, '=A8zy'))).toThrow(/checksum mismatch/);
  });

  it('refuses private keys, other blocks and garbage in the keyring, naming the file', () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from(armored(key, 'PGP PRIVATE KEY BLOCK')), /a\.asc holds a private key/],
      [Buffer.from([0x95, 0x00, 0x01, 0x04]), /a\.asc holds a private key/],
      [
        Buffer.from(armored(key, 'PGP SIGNATURE')),
        /a\.asc holds a PGP SIGNATURE, not a public key/,
      ],
      [Buffer.from('not a key at all'), /a\.asc: not OpenPGP public key material/],
      [
        Buffer.from('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!\n'),
        /not OpenPGP public key material: .*not base64/,
      ],
    ];
    for (const [data, message] of cases) {
      const error = refusal(() => keyringFor([{ path: '/k/a.asc', data }], '/k'));
      expect(error.code).toBe('KEYRING_INVALID');
      expect(error.message).toMatch(message);
    }
    expect(refusal(() => keyringFor([], '/k')).message).toBe('no public keys found in /k');
  });
});
