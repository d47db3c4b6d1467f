/**
 * Just enough of OpenPGP's packet framing (RFC 9580, section 4.2) to tell
 * which primary key a key list entry carries: its fingerprint is computed
 * here, from the public key packet's bytes, so that a list naming
 * fingerprint F cannot smuggle in key G (or F and G together) for gpgv to
 * trust. What the key is good for is gpgv's and openpgp.js's to judge.
 */
import { createHash } from 'node:crypto';
import { dearmor } from '../bundle/armor.js';

export interface Packet {
  tag: number;
  body: Buffer;
}

const PUBLIC_KEY_TAG = 6;
const SECRET_KEY_TAG = 5;

/** The packets of binary OpenPGP data; throws an Error on malformed framing. */
export function readPackets(data: Buffer): Packet[] {
  const packets: Packet[] = [];
  let at = 0;
  while (at < data.length) {
    const header = data[at] ?? 0;
    if ((header & 0x80) === 0) throw new Error(`byte ${at} is no packet header`);
    let tag: number;
    let length: number;
    let start: number;
    if (header & 0x40) {
      tag = header & 0x3f;
      const first = data[at + 1];
      if (first === undefined) throw new Error('truncated packet header');
      if (first < 192) [length, start] = [first, at + 2];
      else if (first < 224)
        [length, start] = [((first - 192) << 8) + (data[at + 2] ?? 0) + 192, at + 3];
      else if (first === 255 && at + 6 <= data.length)
        [length, start] = [data.readUInt32BE(at + 2), at + 6];
      else throw new Error('partial body lengths are not used in keys');
    } else {
      tag = (header >> 2) & 0x0f;
      const bytes = [1, 2, 4][header & 0x03];
      if (bytes === undefined || at + 1 + bytes > data.length)
        throw new Error('truncated packet header');
      [length, start] = [data.readUIntBE(at + 1, bytes), at + 1 + bytes];
    }
    if (start + length > data.length) throw new Error('truncated packet');
    packets.push({ tag, body: data.subarray(start, start + length) });
    at = start + length;
  }
  return packets;
}

/** The fingerprint of a public key packet's body: v4 (SHA-1), v5 and v6 (SHA-256), upper-case hex. */
export function fingerprintOfKeyPacket(body: Buffer): string {
  const version = body[0];
  if (version === 4) {
    const head = Buffer.from([0x99, (body.length >> 8) & 0xff, body.length & 0xff]);
    return createHash('sha1').update(head).update(body).digest('hex').toUpperCase();
  }
  if (version === 5 || version === 6) {
    const head = Buffer.alloc(5);
    head[0] = version === 6 ? 0x9b : 0x9a;
    head.writeUInt32BE(body.length, 1);
    return createHash('sha256').update(head).update(body).digest('hex').toUpperCase();
  }
  throw new Error(`key packet version ${version ?? 'none'} is not supported`);
}

/**
 * The fingerprint of the one primary public key in `armored` (an armored
 * public key block). Throws an Error naming what is wrong: not armored, a
 * private key, no key, or more than one primary key.
 */
export function singlePublicKeyFingerprint(armored: string): string {
  const blocks = dearmor(armored);
  if (blocks.length !== 1 || blocks[0]?.type !== 'PGP PUBLIC KEY BLOCK') {
    throw new Error('must be exactly one armored PGP PUBLIC KEY BLOCK');
  }
  const packets = readPackets(blocks[0].data);
  if (packets.some((p) => p.tag === SECRET_KEY_TAG)) throw new Error('holds a private key');
  const primaries = packets.filter((p) => p.tag === PUBLIC_KEY_TAG);
  if (packets[0]?.tag !== PUBLIC_KEY_TAG || primaries.length !== 1) {
    throw new Error(`must hold exactly one primary public key, not ${primaries.length}`);
  }
  return fingerprintOfKeyPacket(primaries[0]!.body);
}
