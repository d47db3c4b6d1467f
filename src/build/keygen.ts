/**
 * `rick-bundle keygen --name NAME --out DIR`: an ed25519 signing key pair
 * that GnuPG reads too. The private key is written 0600 and encrypted when
 * the passphrase variable is set; existing keys are never overwritten.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeOutputFile } from '../build/output-file.js';
import type { Output } from '../cli/run.js';
import { RickError } from '../errors.js';
import { DEFAULT_PASSPHRASE_ENV } from './sign.js';

export const PRIVATE_KEY_FILE = 'signing-key.asc';
export const PUBLIC_KEY_FILE = 'signing-key.pub.asc';

export interface KeygenDeps {
  output: Output;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface KeygenCommandOptions {
  name: string;
  email?: string;
  outDir: string;
  passphraseEnv?: string;
}

export async function keygen(
  options: KeygenCommandOptions,
  deps: KeygenDeps,
): Promise<{
  fingerprint: string;
  privateKeyPath: string;
  publicKeyPath: string;
  encrypted: boolean;
}> {
  const outDir = resolve(deps.cwd, options.outDir);
  const passphrase = deps.env[options.passphraseEnv ?? DEFAULT_PASSPHRASE_ENV];
  const { generateSigningKey } = await import('../bundle/openpgp.js');
  const key = await generateSigningKey({
    name: options.name,
    ...(options.email ? { email: options.email } : {}),
    ...(passphrase ? { passphrase } : {}),
  });
  const privateKeyPath = join(outDir, PRIVATE_KEY_FILE);
  const publicKeyPath = join(outDir, PUBLIC_KEY_FILE);
  for (const path of [privateKeyPath, publicKeyPath]) {
    if (existsSync(path)) {
      throw new RickError('USAGE', `${path} already exists; refusing to overwrite a key`, {
        hint: 'choose another --out directory',
      });
    }
  }
  await mkdir(outDir, { recursive: true });
  await writeOutputFile(privateKeyPath, key.privateKeyArmored, { mode: 0o600, exclusive: true });
  await writeOutputFile(publicKeyPath, key.publicKeyArmored, { mode: 0o644, exclusive: true });
  return { fingerprint: key.fingerprint, privateKeyPath, publicKeyPath, encrypted: !!passphrase };
}
