/**
 * OpenPGP ASCII armor (RFC 4880, section 6): the text form of key files
 * (`*.asc`). gpgv reads binary keyrings only, so the installer turns armored
 * trusted keys back into the packets they encode. Only the framing is read
 * here (header line, armor headers, base64 body, CRC-24, footer); what the
 * packets say is for gpgv to judge.
 */

/** CRC-24 of RFC 4880, section 6.1. */
function crc24(data: Uint8Array): number {
  let crc = 0xb704ce;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

export interface ArmoredBlock {
  /** What the header line names, e.g. `PGP PUBLIC KEY BLOCK`. */
  type: string;
  data: Buffer;
}

const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes every armored block of `text`, in order. Throws an Error naming
 * what is wrong with the first malformed block; text outside blocks is
 * ignored, as RFC 4880 allows.
 */
export function dearmor(text: string): ArmoredBlock[] {
  const lines = text.split(/\r?\n/);
  const blocks: ArmoredBlock[] = [];
  let i = 0;
  while (i < lines.length) {
    const begin = /^-----BEGIN (PGP [A-Z ,/0-9]+)-----\s*$/.exec(lines[i] ?? '');
    i++;
    if (!begin) continue;
    const type = begin[1] ?? '';
    // Armor headers ("Version: …", "Comment: …") up to the first empty line.
    while (i < lines.length && (lines[i] ?? '').trim() !== '') {
      if (!/^[^:\s]+: /.test(lines[i] ?? '')) {
        throw new Error(`${type}: armor header line ${i + 1} is malformed`);
      }
      i++;
    }
    i++;
    let body = '';
    let checksum: string | undefined;
    let ended = false;
    for (; i < lines.length; i++) {
      const line = (lines[i] ?? '').trim();
      if (line === `-----END ${type}-----`) {
        ended = true;
        i++;
        break;
      }
      if (checksum !== undefined) throw new Error(`${type}: data after the checksum line`);
      if (/^=[A-Za-z0-9+/]{4}$/.test(line)) checksum = line.slice(1);
      else if (BASE64_LINE.test(line)) body += line;
      else throw new Error(`${type}: line ${i + 1} is not base64`);
    }
    if (!ended) throw new Error(`${type}: no END line`);
    if (body.length % 4 !== 0) throw new Error(`${type}: truncated base64 body`);
    const data = Buffer.from(body, 'base64');
    if (data.length === 0) throw new Error(`${type}: empty block`);
    if (checksum !== undefined) {
      const expected = Buffer.from(checksum, 'base64').readUIntBE(0, 3);
      if (crc24(data) !== expected) throw new Error(`${type}: checksum mismatch`);
    }
    blocks.push({ type, data });
  }
  return blocks;
}
