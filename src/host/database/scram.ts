/**
 * SCRAM-SHA-256 password verifiers, as PostgreSQL stores them in
 * pg_authid.rolpassword (RFC 5802/7677, PostgreSQL's scram_build_secret):
 *
 *   SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
 *
 * The installer sends a role's password as such a verifier, never as text:
 * PostgreSQL stores a verifier as given, so the password itself never
 * reaches the server, its statement log or a psql error line. Comparing a
 * stored verifier with a password tells whether the role's password must
 * change at all, so that a rerun changes nothing.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

const ITERATIONS = 4096;

/**
 * The bytes PostgreSQL hashes (pg_saslprep, RFC 4013): an ASCII password as
 * it is; otherwise characters mapped to nothing are dropped, non-ASCII
 * spaces become spaces, then NFKC; a result with control characters is not
 * a valid SASLprep string, and PostgreSQL then hashes the password's raw
 * bytes. (The bidirectional and unassigned-code-point rules are not
 * modelled; the pre-flight's login catches a password they would change.)
 */
function prepare(password: string): Buffer {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII is the whole 7-bit range
  if (/^[\x00-\x7f]*$/.test(password)) return Buffer.from(password, 'utf8');
  const mapped = password
    // Each one alone (RFC 3454 B.1), not as marks combining with what precedes them.
    .replace(
      /\u00AD|\u034F|\u1806|[\u180B-\u180D]|[\u200B-\u200D]|\u2060|[\uFE00-\uFE0F]|\uFEFF/g,
      '',
    )
    .replace(/[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]/g, ' ')
    .normalize('NFKC');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: prohibited output is what is tested
  if (mapped === '' || /[\x00-\x1f\x7f-\x9f]/.test(mapped)) return Buffer.from(password, 'utf8');
  return Buffer.from(mapped, 'utf8');
}

function keys(password: string, salt: Buffer, iterations: number) {
  const salted = pbkdf2Sync(prepare(password), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return { storedKey, serverKey };
}

/** A new verifier for `password`, with a random salt. */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16)): string {
  const { storedKey, serverKey } = keys(password, salt, ITERATIONS);
  return `SCRAM-SHA-256$${ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

const verifierPattern =
  /^SCRAM-SHA-256\$([0-9]{1,7}):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

/** Whether a stored rolpassword is the SCRAM verifier of `password` (false for md5 or none). */
export function verifierMatches(stored: string | undefined, password: string): boolean {
  const m = stored === undefined ? null : verifierPattern.exec(stored);
  if (!m) return false;
  const iterations = Number(m[1]);
  if (iterations < 1) return false;
  const { storedKey, serverKey } = keys(password, Buffer.from(m[2]!, 'base64'), iterations);
  const wantStored = Buffer.from(m[3]!, 'base64');
  const wantServer = Buffer.from(m[4]!, 'base64');
  return (
    wantStored.length === storedKey.length &&
    wantServer.length === serverKey.length &&
    timingSafeEqual(wantStored, storedKey) &&
    timingSafeEqual(wantServer, serverKey)
  );
}

/** Hides any verifier in a text meant for the operator. */
export function redactVerifiers(text: string): string {
  return text.replace(/SCRAM-SHA-256\$[^'\s]*/g, 'SCRAM-SHA-256$…');
}
