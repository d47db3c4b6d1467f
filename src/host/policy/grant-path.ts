/**
 * Where a bundle's grant lives, apart from the grant's reader so that the
 * update timer's no-op tick can look at it without loading a schema.
 */
import { join } from 'node:path';

export const POLICY_DIR = '/etc/rick/policy.d';

export function grantFileFor(root: string, bundle: string): string {
  return join(root, POLICY_DIR, `${bundle}.conf`);
}
