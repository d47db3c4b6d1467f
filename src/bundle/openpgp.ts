/**
 * OpenPGP signing and verification of bundles: binary detached signatures
 * over the exact tarball bytes, so that `gpgv` checks them as well.
 * Keys are v4 ed25519 ("ed25519Legacy" in openpgp.js), which GnuPG 2.2 reads.
 */
import * as openpgp from 'openpgp';
import { describe, RickError } from '../errors.js';
import { type KeyringOptions, noKeysIn, readKeyFiles } from './keyring.js';

export interface GeneratedKey {
  privateKeyArmored: string;
  publicKeyArmored: string;
  /** Upper-case hex fingerprint of the primary key. */
  fingerprint: string;
}

export interface KeygenOptions {
  /** User ID name, e.g. "rick release signing". */
  name: string;
  email?: string;
  /** Encrypts the private key when set. */
  passphrase?: string;
  /** Creation time; defaults to now. */
  date?: Date;
}

export async function generateSigningKey(options: KeygenOptions): Promise<GeneratedKey> {
  const userID = options.email
    ? { name: options.name, email: options.email }
    : { name: options.name };
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'ed25519Legacy',
    userIDs: [userID],
    format: 'armored',
    ...(options.passphrase ? { passphrase: options.passphrase } : {}),
    ...(options.date ? { date: options.date } : {}),
  });
  const key = await openpgp.readKey({ armoredKey: publicKey });
  return {
    privateKeyArmored: privateKey,
    publicKeyArmored: publicKey,
    fingerprint: key.getFingerprint().toUpperCase(),
  };
}

/** Reads an armored private key and decrypts it when it is protected. */
export async function readSigningKey(
  armored: string,
  passphrase: string | undefined,
  /** The environment variable the passphrase was read from, for the hint. */
  passphraseEnv = 'RICK_SIGNING_PASSPHRASE',
): Promise<openpgp.PrivateKey> {
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: armored });
  } catch (error) {
    throw new RickError('KEY_INVALID', `not an armored OpenPGP private key: ${describe(error)}`);
  }
  if (key.isDecrypted()) return key;
  if (passphrase === undefined) {
    throw new RickError(
      'KEY_INVALID',
      'the signing key is protected by a passphrase and none was given',
      {
        hint: `set the passphrase in the environment variable ${passphraseEnv} (--passphrase-env NAME reads another)`,
      },
    );
  }
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase });
  } catch (error) {
    throw new RickError('KEY_INVALID', `cannot unlock the signing key: ${describe(error)}`);
  }
}

/** A binary detached signature (type 0x00, over the exact bytes). */
export async function signDetached(data: Uint8Array, key: openpgp.PrivateKey): Promise<Uint8Array> {
  const message = await openpgp.createMessage({ binary: data });
  return openpgp.sign({ message, signingKeys: key, detached: true, format: 'binary' });
}

export function fingerprintOf(key: openpgp.Key): string {
  return key.getFingerprint().toUpperCase();
}

/** Parses every public key in armored or binary key material. */
export async function parsePublicKeys(
  material: Uint8Array,
  source: string,
): Promise<openpgp.PublicKey[]> {
  const text = Buffer.from(material).toString('latin1');
  try {
    const keys = text.includes('-----BEGIN PGP')
      ? await openpgp.readKeys({ armoredKeys: Buffer.from(material).toString('utf8') })
      : await openpgp.readKeys({ binaryKeys: material });
    return keys.map((k) => k.toPublic());
  } catch (error) {
    throw new RickError(
      'KEYRING_INVALID',
      `${source}: not OpenPGP public key material: ${describe(error)}`,
    );
  }
}

/**
 * Reads trusted public keys from a key file or from every `*.asc`/`*.gpg`
 * file of a directory (see src/bundle/keyring.ts for the checks on who could
 * have written them).
 */
export async function readKeyring(
  path: string,
  options: KeyringOptions = {},
): Promise<openpgp.PublicKey[]> {
  const keys: openpgp.PublicKey[] = [];
  for (const file of readKeyFiles(path, options)) {
    keys.push(...(await parsePublicKeys(file.data, file.path)));
  }
  if (keys.length === 0) throw noKeysIn(path);
  return keys;
}

export interface VerifiedSignature {
  /** Fingerprint of the trusted primary key whose (sub)key made the signature. */
  fingerprint: string;
  created: Date | null;
}

async function parseSignature(signature: Uint8Array): Promise<openpgp.Signature> {
  if (signature.length === 0)
    throw new RickError('SIGNATURE_INVALID', 'the signature file is empty');
  try {
    const text = Buffer.from(signature).toString('latin1');
    if (text.startsWith('-----BEGIN PGP SIGNATURE-----')) {
      return await openpgp.readSignature({
        armoredSignature: Buffer.from(signature).toString('utf8'),
      });
    }
    return await openpgp.readSignature({ binarySignature: signature });
  } catch (error) {
    throw new RickError('SIGNATURE_INVALID', `not an OpenPGP signature: ${describe(error)}`);
  }
}

/**
 * Checks a detached signature over `data` against the trusted keys only.
 * Only binary-document signatures count: a text-mode signature signs a
 * canonicalised text, not these exact bytes.
 */
export async function verifyDetached(
  data: Uint8Array,
  signature: Uint8Array,
  trustedKeys: readonly openpgp.PublicKey[],
): Promise<VerifiedSignature> {
  const parsed = await parseSignature(signature);
  const packets = [...parsed.packets];
  if (packets.length === 0)
    throw new RickError('SIGNATURE_INVALID', 'the signature file holds no signature');
  for (const packet of packets) {
    if (packet.signatureType !== openpgp.enums.signature.binary) {
      throw new RickError(
        'SIGNATURE_INVALID',
        `signature type 0x${(packet.signatureType ?? 0).toString(16).padStart(2, '0')} is not a binary document signature`,
        {
          hint: 'sign the tarball bytes with a binary detached signature (gpg --detach-sign, not --textmode)',
        },
      );
    }
  }
  const message = await openpgp.createMessage({ binary: data });
  const result = await openpgp.verify({
    message,
    signature: parsed,
    verificationKeys: [...trustedKeys],
    format: 'binary',
  });
  const failures: string[] = [];
  for (const sig of result.signatures) {
    try {
      await sig.verified;
      const signer = trustedKeys.find((k) => k.getKeys(sig.keyID).length > 0);
      if (!signer) continue;
      const packet = (await sig.signature).packets[0];
      return { fingerprint: fingerprintOf(signer), created: packet?.created ?? null };
    } catch (error) {
      failures.push(`key ${sig.keyID.toHex().toUpperCase()}: ${describe(error)}`);
    }
  }
  throw new RickError(
    'SIGNATURE_INVALID',
    `no valid signature by a trusted key (${failures.join('; ')})`,
    {
      hint: 'check that the bundle and its .sig belong together and that the signing key is in the keyring',
    },
  );
}
