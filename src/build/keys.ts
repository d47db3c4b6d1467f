/**
 * `rick-bundle keys`: the root key's two documents (src/trust/key-list.ts).
 *
 *   --previous keys.json | --new   [--add KEY.pub]... [--roles bundles,index] [--remove FPR]...
 *                                  [--valid-for 365d]        → keys.json + keys.json.sig
 *   --new-root R2.pub                                        → root-handover.json + .sig
 *
 * Both are signed by `--root-key`, the offline root key whose public half
 * hosts keep as /etc/rick/keys/root.asc. A list starts from the one
 * published before (`--previous`, its signature checked first with
 * openpgp.js, against the root key or `--keyring` after a hand-over) and
 * takes serial previous + 1. What changes nothing is refused before
 * anything is written, as `rick-bundle index` does: a flag given for
 * nothing, a key added that is listed already, a key removed that is not,
 * and a list that would name no key.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Output } from '../cli/run.js';
import { describe, RickError } from '../errors.js';
import {
  HANDOVER_FILE,
  HANDOVER_SIGNATURE_FILE,
  KEY_LIST_FILE,
  KEY_LIST_SIGNATURE_FILE,
  type KeyList,
  type KeyRole,
  keyRoles,
  parseKeyList,
  planHandover,
  planKeyList,
  type RootHandover,
  serializeHandover,
  serializeKeyList,
} from '../trust/key-list.js';
import { singlePublicKeyFingerprint } from '../trust/openpgp-packets.js';
import { writeOutputFile } from './output-file.js';
import { parseDuration } from './release-index.js';
import { DEFAULT_PASSPHRASE_ENV, readInput } from './sign.js';

export const DEFAULT_KEYS_VALID_FOR = '365d';
/** The shortest validity of a key list: hosts refuse it once expired. */
const MIN_KEYS_VALID_MS = 24 * 3_600_000;

export interface KeysCommandOptions {
  /** The armored private root key. */
  rootKey: string;
  passphraseEnv?: string;
  out: string;
  previous?: string;
  newList?: boolean;
  /** Public keys that signed `previous`; default the root key's public half. */
  keyring?: string;
  add: string[];
  /** `bundles`, `index` or both, comma-separated: what the added keys may sign. */
  roles?: string;
  remove: string[];
  validFor?: string;
  /** Hand over to this public root key instead of writing a list. */
  newRoot?: string;
}

const usage = (message: string, hint?: string) =>
  new RickError('USAGE', message, hint === undefined ? {} : { hint });

/** Refuses contradictions and flags that change nothing, judged on the options alone. */
export function validateKeysOptions(o: KeysCommandOptions): void {
  const pointless = (flag: string, needs: string) =>
    usage(`${flag} changes nothing without ${needs}`, `leave ${flag} out, or add ${needs}`);
  if (o.newRoot !== undefined) {
    const listFlags: Array<[string, boolean]> = [
      ['--previous', o.previous !== undefined],
      ['--new', o.newList === true],
      ['--keyring', o.keyring !== undefined],
      ['--add', o.add.length > 0],
      ['--roles', o.roles !== undefined],
      ['--remove', o.remove.length > 0],
      ['--valid-for', o.validFor !== undefined],
    ];
    const given = listFlags.filter(([, on]) => on).map(([flag]) => flag);
    if (given.length > 0) {
      throw usage(
        `--new-root writes a hand-over statement, not a key list: ${given.join(', ')} ${given.length === 1 ? 'does' : 'do'} nothing with it`,
        'run rick-bundle keys twice: --new-root, then the list signed by the new root (--root-key R2 --previous keys.json --keyring R.pub)',
      );
    }
    return;
  }
  if (o.previous !== undefined && o.newList) {
    throw usage(
      '--previous and --new contradict each other',
      'start from --previous, or write a first list with --new',
    );
  }
  if (o.previous === undefined && !o.newList) {
    throw usage(
      'no --previous key list: a list started afresh would drop every key and start the serial over, which hosts refuse',
      'pass --previous keys.json (the list published now, its .sig beside it), --new for the first list, or --new-root for a hand-over',
    );
  }
  if (o.keyring !== undefined && o.previous === undefined) {
    throw pointless('--keyring', '--previous (it checks the signature of the previous list)');
  }
  if (o.roles !== undefined && o.add.length === 0) throw pointless('--roles', '--add');
}

export function parseRoles(text: string | undefined): KeyRole[] {
  if (text === undefined) return [...keyRoles];
  const roles = text
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  const unknown = roles.filter((r) => !(keyRoles as readonly string[]).includes(r));
  if (roles.length === 0 || unknown.length > 0) {
    throw usage(`--roles ${JSON.stringify(text)}: name bundles, index, or both (bundles,index)`);
  }
  return keyRoles.filter((r) => roles.includes(r));
}

export function normalizeFingerprint(text: string): string {
  const fpr = text.replace(/\s+/g, '').toUpperCase();
  if (!/^(?:[0-9A-F]{40}|[0-9A-F]{64})$/.test(fpr)) {
    throw usage(`--remove ${JSON.stringify(text)} is not a key fingerprint (40 or 64 hex digits)`);
  }
  return fpr;
}

export interface KeysDeps {
  output: Output;
  env: NodeJS.ProcessEnv;
  cwd: string;
  now?: () => Date;
}

export type KeysResult =
  | {
      kind: 'list';
      list: KeyList;
      path: string;
      signaturePath: string;
      root: string;
      notes: string[];
    }
  | { kind: 'handover'; handover: RootHandover; path: string; signaturePath: string };

/** A public key file: one armored primary key, its fingerprint agreed on by both readers. */
async function readPublicKey(
  file: string,
  what: string,
): Promise<{ fingerprint: string; publicKey: string }> {
  const { parsePublicKeys, fingerprintOf } = await import('../bundle/openpgp.js');
  const bytes = await readInput(file, what);
  const publicKey = bytes.toString('utf8');
  let fingerprint: string;
  try {
    fingerprint = singlePublicKeyFingerprint(publicKey);
  } catch (error) {
    throw new RickError('KEY_INVALID', `${what} ${file}: ${describe(error)}`, {
      hint: 'give the armored public key (signing-key.pub.asc from rick-bundle keygen, or gpg --export --armor)',
    });
  }
  const keys = await parsePublicKeys(bytes, file);
  if (keys.length !== 1 || fingerprintOf(keys[0]!) !== fingerprint) {
    throw new RickError('KEY_INVALID', `${what} ${file}: not one public key ${fingerprint}`);
  }
  return { fingerprint, publicKey: `${publicKey.trim()}\n` };
}

export async function writeKeys(options: KeysCommandOptions, deps: KeysDeps): Promise<KeysResult> {
  validateKeysOptions(options);
  const roles = parseRoles(options.roles);
  const remove = options.remove.map(normalizeFingerprint);
  const validForMs = parseDuration(options.validFor ?? DEFAULT_KEYS_VALID_FOR, '--valid-for');
  if (validForMs < MIN_KEYS_VALID_MS) {
    throw usage(`--valid-for ${options.validFor}: a key list must be valid for at least 1d`);
  }
  const at = (p: string) => resolve(deps.cwd, p);
  const { fingerprintOf, parsePublicKeys, readSigningKey, signDetached, verifyDetached } =
    await import('../bundle/openpgp.js');
  const passphraseEnv = options.passphraseEnv ?? DEFAULT_PASSPHRASE_ENV;
  const passphrase = deps.env[passphraseEnv];
  const key = await readSigningKey(
    (await readInput(at(options.rootKey), 'root key')).toString('utf8'),
    passphrase === '' ? undefined : passphrase,
    passphraseEnv,
  );
  const rootFingerprint = fingerprintOf(key);
  const now = deps.now?.() ?? new Date();
  const outDir = at(options.out);

  if (options.newRoot !== undefined) {
    const next = await readPublicKey(at(options.newRoot), 'new root key');
    if (next.fingerprint === rootFingerprint) {
      throw usage(`--new-root ${options.newRoot} is the root key itself: nothing to hand over`);
    }
    const handover = planHandover(rootFingerprint, next, now);
    const text = serializeHandover(handover);
    const signature = await signDetached(Buffer.from(text), key);
    await mkdir(outDir, { recursive: true });
    const path = resolve(outDir, HANDOVER_FILE);
    const signaturePath = resolve(outDir, HANDOVER_SIGNATURE_FILE);
    await writeOutputFile(signaturePath, signature, { mode: 0o644 });
    await writeOutputFile(path, text, { mode: 0o644 });
    return { kind: 'handover', handover, path, signaturePath };
  }

  let previous: KeyList | undefined;
  if (options.previous !== undefined) {
    const file = at(options.previous);
    const bytes = await readInput(file, 'previous key list');
    const signature = await readInput(`${file}.sig`, 'signature of the previous key list').catch(
      () => {
        throw new RickError(
          'SIGNATURE_MISSING',
          `no signature ${file}.sig beside the previous key list`,
          {
            hint: 'download keys.json.sig with keys.json',
          },
        );
      },
    );
    const trusted = options.keyring
      ? await parsePublicKeys(await readInput(at(options.keyring), 'keyring'), options.keyring)
      : [key.toPublic()];
    try {
      await verifyDetached(bytes, signature, trusted);
    } catch (error) {
      throw new RickError(
        'KEY_LIST_UNTRUSTED',
        `the previous key list ${file} is not signed by ${options.keyring ? `a key of ${options.keyring}` : 'the root key'}: ${describe(error)}`,
        {
          hint: 'pass --keyring with the root key that signed it (after a hand-over), or check where it came from',
        },
      );
    }
    previous = parseKeyList(bytes.toString('utf8'), `previous key list ${file}`);
  }
  const add = [];
  for (const file of options.add) {
    const k = await readPublicKey(at(file), '--add');
    if (k.fingerprint === rootFingerprint) {
      throw usage(
        `--add ${file} is the root key: the root signs key lists only, never bundles or the index`,
        'make a release key with rick-bundle keygen',
      );
    }
    if (remove.includes(k.fingerprint)) {
      throw usage(`${k.fingerprint} is both added and removed: that changes nothing`);
    }
    add.push(k);
  }
  const { list, notes } = planKeyList(previous, { add, roles, remove }, now, validForMs);
  const text = serializeKeyList(list);
  const signature = await signDetached(Buffer.from(text), key);
  await mkdir(outDir, { recursive: true });
  const path = resolve(outDir, KEY_LIST_FILE);
  const signaturePath = resolve(outDir, KEY_LIST_SIGNATURE_FILE);
  // The signature first: a reader finding the new list finds its signature too.
  await writeOutputFile(signaturePath, signature, { mode: 0o644 });
  await writeOutputFile(path, text, { mode: 0o644 });
  return { kind: 'list', list, path, signaturePath, root: rootFingerprint, notes };
}
