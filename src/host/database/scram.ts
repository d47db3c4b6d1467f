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
 * PostgreSQL normalizes a password with SASLprep (RFC 4013); for passwords
 * of printable ASCII that is the identity, and NFKC covers the common rest.
 */
function prepare(password: string): Buffer {
  return Buffer.from(password.normalize('NFKC'), 'utf8');
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
