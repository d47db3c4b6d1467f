/**
 * Signature checks on the host, by GnuPG's gpgv: the verifier apt trusts
 * with every Debian host, and the one bootstrap.sh uses for the first
 * bundle, so it is on every host rick runs on (Debian's apt depends on it;
 * on Arch it comes with gnupg, which pacman depends on). openpgp.js makes and
 * checks signatures on the build side; the installer, which runs as root on
 * every host and on every timer tick that installs, asks gpgv instead of
 * carrying a second OpenPGP implementation of its own.
 *
 * gpgv gets the trusted keys alone (a keyring written from the key files,
 * in a private temporary home, so no default `trustedkeys` of root's can
 * count), the signature, and the bundle's bytes, written there from the
 * caller's buffer: the bytes checked are the very bytes the caller parses
 * next. (Not on stdin: a pipe takes 64 KiB at a time, and the rest would
 * wait for this process's event loop, which is busy loading the program
 * while gpgv runs; see src/host/intake/signature.ts.) Its machine-readable status
 * lines (`--status-fd`) decide, not its exit code alone.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dearmor } from '../../bundle/armor.js';
import { type KeyFile, noKeysIn } from '../../bundle/keyring.js';
import { describe, RickError } from '../../errors.js';
import { realCommandRunner } from '../../io/exec.js';
import { os } from '../../io/lazy-builtins.js';

export interface VerifiedSignature {
  /** Upper-case hex fingerprint of the trusted primary key whose (sub)key made the signature. */
  fingerprint: string;
  created: Date | null;
}

/** OpenPGP packet tag of the first packet, or undefined when the first byte is no packet header. */
function firstPacketTag(data: Uint8Array): number | undefined {
  const header = data[0];
  if (header === undefined || (header & 0x80) === 0) return undefined;
  return header & 0x40 ? header & 0x3f : (header >> 2) & 0x0f;
}

const PUBLIC_KEY_TAG = 6;
const SECRET_KEY_TAG = 5;

function checkPublicKeyPackets(data: Buffer, path: string): Buffer {
  const tag = firstPacketTag(data);
  if (tag === PUBLIC_KEY_TAG) return data;
  if (tag === SECRET_KEY_TAG) {
    throw new RickError('KEYRING_INVALID', `${path} holds a private key; refusing to use it`, {
      hint: 'only public keys belong in the trusted keyring: gpg --export (not --export-secret-keys)',
    });
  }
  throw new RickError('KEYRING_INVALID', `${path}: not OpenPGP public key material`, {
    hint: 'export the release key with gpg --export (binary) or gpg --export --armor',
  });
}

/**
 * The trusted keys as one binary keyring for gpgv: binary key files as they
 * are, armored ones decoded. Each must start with a public key packet; an
 * empty keyring is refused.
 */
export function keyringFor(files: readonly KeyFile[], keyringPath: string): Buffer {
  const parts: Buffer[] = [];
  for (const file of files) {
    if (file.data.length === 0) continue;
    if (file.data.toString('latin1').includes('-----BEGIN PGP')) {
      let blocks: ReturnType<typeof dearmor>;
      try {
        blocks = dearmor(file.data.toString('utf8'));
      } catch (error) {
        throw new RickError(
          'KEYRING_INVALID',
          `${file.path}: not OpenPGP public key material: ${describe(error)}`,
        );
      }
      for (const block of blocks) {
        if (block.type !== 'PGP PUBLIC KEY BLOCK') {
          const secret = block.type.includes('PRIVATE');
          throw new RickError(
            'KEYRING_INVALID',
            secret
              ? `${file.path} holds a private key; refusing to use it`
              : `${file.path} holds a ${block.type}, not a public key`,
            { hint: 'only public keys belong in the trusted keyring' },
          );
        }
        parts.push(checkPublicKeyPackets(block.data, file.path));
      }
    } else {
      parts.push(checkPublicKeyPackets(file.data, file.path));
    }
  }
  if (parts.length === 0) throw noKeysIn(keyringPath);
  return Buffer.concat(parts);
}

/**
 * The signature types (classes) of the signature packets in `signature`, or
 * undefined when it cannot tell. Only read to refuse a text-mode or other
 * non-binary signature with a message that says so (gpgv would call it a
 * BAD signature, since it checks a canonicalised text, not these bytes);
 * accepting is gpgv's decision alone.
 */
export function signatureTypes(signature: Buffer): number[] | undefined {
  let data = signature;
  if (signature.toString('latin1').includes('-----BEGIN PGP')) {
    try {
      const blocks = dearmor(signature.toString('utf8'));
      if (blocks.length !== 1 || blocks[0]?.type !== 'PGP SIGNATURE') return undefined;
      data = blocks[0].data;
    } catch {
      return undefined;
    }
  }
  const types: number[] = [];
  let at = 0;
  while (at < data.length) {
    const header = data[at] ?? 0;
    if ((header & 0x80) === 0) return undefined;
    let tag: number;
    let length: number;
    let start: number;
    if (header & 0x40) {
      tag = header & 0x3f;
      const first = data[at + 1];
      if (first === undefined) return undefined;
      if (first < 192) [length, start] = [first, at + 2];
      else if (first < 224)
        [length, start] = [((first - 192) << 8) + (data[at + 2] ?? 0) + 192, at + 3];
      else if (first === 255 && at + 6 <= data.length)
        [length, start] = [data.readUInt32BE(at + 2), at + 6];
      else return undefined; // partial lengths: never used for signatures
    } else {
      tag = (header >> 2) & 0x0f;
      const bytes = [1, 2, 4][header & 0x03];
      if (bytes === undefined || at + 1 + bytes > data.length) return undefined;
      [length, start] = [data.readUIntBE(at + 1, bytes), at + 1 + bytes];
    }
    if (start + length > data.length) return undefined;
    if (tag === 2) {
      const version = data[start];
      const type = version === 3 ? data[start + 2] : data[start + 1];
      if (type === undefined) return undefined;
      types.push(type);
    }
    at = start + length;
  }
  return types;
}

function notBinary(type: string): RickError {
  return new RickError(
    'SIGNATURE_INVALID',
    `signature type 0x${type} is not a binary document signature`,
    {
      hint: 'sign the tarball bytes with a binary detached signature (gpg --detach-sign, not --textmode)',
    },
  );
}

/** Hash algorithms (RFC 4880 / RFC 9580 ids) a signature may use: SHA-2 and SHA-3. */
const ACCEPTED_HASHES = new Set(['8', '9', '10', '11', '12', '14']);

interface SignatureStatus {
  keyId?: string;
  good: boolean;
  bad: boolean;
  /** ERRSIG's reason code: 9 is "no public key", that is, not a trusted key. */
  errorCode?: string;
  /** EXPSIG, EXPKEYSIG or REVKEYSIG. */
  problem?: string;
  valid?: { fingerprint: string; created: Date | null; hash: string; sigClass: string };
  sigClass?: string;
}

/**
 * Decides from gpgv's status lines (see GnuPG's doc/DETAILS). A bundle is
 * accepted when at least one signature is good, by a trusted key, over the
 * exact bytes (class 00, not text mode) with a SHA-2/SHA-3 hash, and no
 * signature in the file is bad, expired or by an expired or revoked key.
 * Signatures by keys that are not trusted are passed over, as OpenPGP does
 * with co-signatures by unknown keys.
 */
export function decideGpgvStatus(status: string, detail: string): VerifiedSignature {
  const sigs: SignatureStatus[] = [];
  let noData = false;
  for (const line of status.split('\n')) {
    if (!line.startsWith('[GNUPG:] ')) continue;
    const [keyword, ...args] = line.slice('[GNUPG:] '.length).trim().split(' ');
    const current = sigs.at(-1);
    switch (keyword) {
      case 'NEWSIG':
        sigs.push({ good: false, bad: false });
        break;
      case 'NODATA':
        noData = true;
        break;
      case 'GOODSIG':
        if (current) Object.assign(current, { good: true, keyId: args[0] });
        break;
      case 'BADSIG':
        if (current) Object.assign(current, { bad: true, keyId: args[0] });
        break;
      case 'EXPSIG':
      case 'EXPKEYSIG':
      case 'REVKEYSIG':
        if (current) Object.assign(current, { problem: keyword, keyId: args[0] });
        break;
      case 'ERRSIG':
        // ERRSIG <keyid> <pkalgo> <hashalgo> <class> <time> <rc> [<fpr>]
        if (current) {
          Object.assign(current, { keyId: args[0], sigClass: args[3], errorCode: args[5] });
        }
        break;
      case 'VALIDSIG': {
        // VALIDSIG <fpr> <date> <timestamp> <expire> <version> <reserved>
        //          <pkalgo> <hashalgo> <class> [<primary-fpr>]
        if (!current) break;
        const timestamp = Number(args[2]);
        current.valid = {
          fingerprint: (args[9] ?? args[0] ?? '').toUpperCase(),
          created: Number.isFinite(timestamp) ? new Date(timestamp * 1000) : null,
          hash: args[7] ?? '',
          sigClass: args[8] ?? '',
        };
        current.sigClass = args[8];
        break;
      }
    }
  }

  if (sigs.length === 0) {
    throw new RickError(
      'SIGNATURE_INVALID',
      noData
        ? 'not an OpenPGP signature: gpgv found no OpenPGP data in it'
        : `the signature file holds no signature${detail ? ` (gpgv: ${detail})` : ''}`,
    );
  }
  for (const sig of sigs) {
    if (sig.sigClass !== undefined && sig.sigClass !== '00') {
      throw notBinary(sig.sigClass.toLowerCase());
    }
  }

  const failures: string[] = [];
  let accepted: VerifiedSignature | undefined;
  let refused = false;
  for (const sig of sigs) {
    const key = `key ${sig.keyId ?? 'unknown'}`;
    if (sig.bad) {
      failures.push(`${key}: BAD signature, the bytes are not what was signed`);
      refused = true;
    } else if (sig.problem) {
      const what = {
        EXPSIG: 'the signature has expired',
        EXPKEYSIG: 'the key has expired',
        REVKEYSIG: 'the key is revoked',
      }[sig.problem];
      failures.push(`${key}: ${what}`);
      refused = true;
    } else if (sig.errorCode !== undefined) {
      failures.push(
        sig.errorCode === '9'
          ? `${key}: not a trusted key`
          : `${key}: cannot be checked (gpgv reason ${sig.errorCode})`,
      );
      if (sig.errorCode !== '9') refused = true;
    } else if (sig.good && sig.valid) {
      if (!ACCEPTED_HASHES.has(sig.valid.hash)) {
        failures.push(`${key}: made with weak hash algorithm ${sig.valid.hash}`);
        refused = true;
      } else {
        accepted ??= { fingerprint: sig.valid.fingerprint, created: sig.valid.created };
      }
    } else {
      failures.push(`${key}: not confirmed by gpgv${detail ? ` (${detail})` : ''}`);
      refused = true;
    }
  }
  if (accepted && !refused) return accepted;
  throw new RickError(
    'SIGNATURE_INVALID',
    `no valid signature by a trusted key (${failures.join('; ')})`,
    {
      hint: 'check that the bundle and its .sig belong together and that the signing key is in the keyring',
    },
  );
}

/**
 * gpgv reads the bundle from a file in the temporary directory: a full or
 * unwritable one (ENOSPC, EROFS, EACCES) is the host's, named with the
 * variable that chooses it, and reported as such, never as a crash.
 */
function tmpdirError(tmp: string, bytes: number, error: unknown): RickError {
  const code = (error as NodeJS.ErrnoException).code;
  const why = code === 'ENOSPC' ? 'no space left on device' : describe(error);
  return new RickError(
    'IO_ERROR',
    `cannot write the bundle to the temporary directory ${tmp} (TMPDIR) to check its signature: ${why}`,
    {
      cause: error,
      hint: `gpgv reads the bundle (${bytes} bytes) from a file there: free space in ${tmp}, or point TMPDIR at a directory with room for it`,
    },
  );
}

export interface GpgvOptions {
  /** The gpgv program; `gpgv` from PATH unless set. */
  program?: string;
  timeoutMs?: number;
}

/**
 * Checks a detached signature over `data` against the trusted keys only
 * (`keyring`, from keyringFor()), with gpgv. Throws SIGNATURE_INVALID for
 * anything but a good signature, PREREQUISITE_MISSING without gpgv.
 */
export async function verifyWithGpgv(
  data: Uint8Array,
  signature: Uint8Array,
  keyring: Uint8Array,
  options: GpgvOptions = {},
): Promise<VerifiedSignature> {
  if (signature.length === 0) {
    throw new RickError('SIGNATURE_INVALID', 'the signature file is empty');
  }
  const other = signatureTypes(Buffer.from(signature))?.find((type) => type !== 0x00);
  if (other !== undefined) throw notBinary(other.toString(16).padStart(2, '0'));
  // Synchronous up to the start of gpgv: see src/host/intake/signature.ts.
  const tmp = os().tmpdir();
  let home: string;
  try {
    home = mkdtempSync(join(tmp, 'rick-gpgv-'));
  } catch (error) {
    throw tmpdirError(tmp, data.length, error);
  }
  try {
    const keyringFile = join(home, 'trusted.gpg');
    const signatureFile = join(home, 'bundle.sig');
    const dataFile = join(home, 'bundle.tgz');
    try {
      writeFileSync(keyringFile, keyring, { mode: 0o600 });
      writeFileSync(signatureFile, signature, { mode: 0o600 });
      writeFileSync(dataFile, data, { mode: 0o600 });
    } catch (error) {
      throw tmpdirError(tmp, data.length, error);
    }
    const program = options.program ?? 'gpgv';
    const result = await realCommandRunner.run(
      program,
      ['--homedir', home, '--status-fd', '1', '--keyring', keyringFile, signatureFile, dataFile],
      {
        // The C locale: status lines and messages as documented, whatever the host's.
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
        timeoutMs: options.timeoutMs ?? 60_000,
      },
    );
    if (result.startError === 'ENOENT') {
      throw new RickError(
        'PREREQUISITE_MISSING',
        `${program} is not installed: rick-install checks bundle signatures with it`,
        { hint: 'apt-get install gpgv (Debian), pacman -S gnupg (Arch)' },
      );
    }
    if (result.startError) throw new RickError('IO_ERROR', `cannot run ${result.stderr}`);
    const status = result.stdout;
    const detail = result.stderr
      .split('\n')
      .map((l) => l.replace(/^gpgv: /, '').trim())
      .filter(Boolean)
      .slice(-3)
      .join('; ');
    const verdict = decideGpgvStatus(status, detail);
    // A good signature with a failing gpgv is not a good signature, unless
    // what failed is only a signature by a key that is not trusted.
    if (result.code !== 0 && !/\[GNUPG:\] NO_PUBKEY /.test(status)) {
      throw new RickError(
        'SIGNATURE_INVALID',
        `gpgv did not confirm the signature (exit ${result.code})${detail ? `: ${detail}` : ''}`,
      );
    }
    return verdict;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
