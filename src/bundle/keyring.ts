/**
 * The trusted keyring on disk: a key file, or every `*.asc`/`*.gpg` file of a
 * directory (`/etc/rick/keys` on a host). Whoever can write there can make
 * the host run anything as root, so every file and the directory must be
 * neither group- nor world-writable, and on a host owned by root. Reading
 * the files is shared by both verifiers: openpgp.js (rick-bundle) and gpgv
 * (rick-install). Synchronous: a handful of small files, read before
 * anything else happens (see src/host/intake/signature.ts for why that matters).
 */
import { readdirSync, readFileSync, type Stats, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, RickError } from '../errors.js';

export interface KeyringOptions {
  /**
   * When set, every key file and the directory holding them must be owned by
   * this uid (root on a host), besides being neither group- nor world-writable.
   */
  requireOwner?: number;
}

export interface KeyFile {
  path: string;
  data: Buffer;
}

function checkNotWritableByOthers(path: string, st: Stats, options: KeyringOptions): void {
  if ((st.mode & 0o022) !== 0) {
    throw new RickError(
      'KEYRING_INSECURE',
      `${path} is group- or world-writable (mode ${(st.mode & 0o777).toString(8)}); refusing to trust it`,
      { hint: `chmod go-w ${path}` },
    );
  }
  if (options.requireOwner !== undefined && st.uid !== options.requireOwner) {
    throw new RickError(
      'KEYRING_INSECURE',
      `${path} is owned by uid ${st.uid}, not ${options.requireOwner}; refusing to trust it`,
      { hint: `chown ${options.requireOwner} ${path}` },
    );
  }
}

/** Reads the key files of a keyring, after checking who could have written them. */
export function readKeyFiles(path: string, options: KeyringOptions = {}): KeyFile[] {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (error) {
    throw new RickError('KEYRING_INVALID', `cannot read keyring ${path}: ${describe(error)}`, {
      hint: `put the release public key in ${path} or pass --keyring`,
    });
  }
  checkNotWritableByOthers(path, st, options);
  const files = st.isDirectory()
    ? readdirSync(path)
        .filter((f) => f.endsWith('.asc') || f.endsWith('.gpg'))
        .sort()
        .map((f) => join(path, f))
    : [path];
  const read: KeyFile[] = [];
  for (const file of files) {
    if (file !== path) checkNotWritableByOthers(file, statSync(file), options);
    read.push({ path: file, data: readFileSync(file) });
  }
  return read;
}

/** An empty keyring is an error: trusting nothing must not look like trusting everything. */
export function noKeysIn(path: string): RickError {
  return new RickError('KEYRING_INVALID', `no public keys found in ${path}`, {
    hint: 'put the release public key (*.asc) there',
  });
}
