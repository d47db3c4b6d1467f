/**
 * Builds well-formed, signed bundles for installer tests without going
 * through the bundle builder, so that installer tests pin the manifest
 * contract itself. Hostile archives are forged in the tests that need them.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as openpgp from 'openpgp';
import { type PackEntry, packTarGz } from '../../src/build/tar-pack.js';
import {
  type FileKind,
  MANIFEST_PATH,
  type Manifest,
  type ManifestInput,
  manifestSchema,
  serializeManifest,
  serviceNameForUnit,
} from '../../src/bundle/manifest.js';
import { emptyNeeds, type Needs } from '../../src/bundle/needs.js';
import {
  generateSigningKey,
  parsePublicKeys,
  readSigningKey,
  signDetached,
} from '../../src/bundle/openpgp.js';
import { factKinds, scanPlaceholders } from '../../src/bundle/placeholders.js';

export interface TestKey {
  privateKey: openpgp.PrivateKey;
  /** The private key as `rick-bundle keygen` writes it (unencrypted). */
  privateKeyArmored: string;
  publicKeys: openpgp.PublicKey[];
  publicKeyArmored: string;
  fingerprint: string;
}

export async function makeTestKey(name = 'rick test'): Promise<TestKey> {
  const generated = await generateSigningKey({ name, date: new Date('2024-01-01T00:00:00Z') });
  return {
    privateKey: await readSigningKey(generated.privateKeyArmored, undefined),
    privateKeyArmored: generated.privateKeyArmored,
    publicKeys: await parsePublicKeys(Buffer.from(generated.publicKeyArmored), name),
    publicKeyArmored: generated.publicKeyArmored,
    fingerprint: generated.fingerprint,
  };
}

export interface FactoryFile {
  path: string;
  content: string | Buffer;
  kind?: FileKind;
  mode?: number;
}

export interface FactoryBundle {
  name?: string;
  version?: string;
  files?: FactoryFile[];
  /** Units to start; defaults to every .container and .pod file. */
  services?: ManifestInput['services'];
  /** Declared needs: makes a schemaVersion 2 manifest (without: version 1, which declares none). */
  needs?: Partial<Needs>;
  /** Overrides applied to the manifest after it is computed (may make it invalid on purpose). */
  manifestPatch?: (manifest: Record<string, unknown>) => Record<string, unknown>;
}

const kindByDir: Record<string, FileKind> = {
  quadlet: 'quadlet',
  systemd: 'systemd',
  caddy: 'caddy',
  env: 'env',
  'sysusers.d': 'sysusers',
  'tmpfiles.d': 'tmpfiles',
  installer: 'installer',
};

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A small bundle: one pod, one container that reads one env file, its own service user. */
export function sampleFiles(name = 'demo', marker = 'v1'): FactoryFile[] {
  return [
    {
      path: `quadlet/${name}.pod`,
      content: `[Pod]\nPodName=${name}\n\n[Install]\nWantedBy=multi-user.target\n`,
    },
    {
      path: `quadlet/${name}-app.container`,
      content: [
        '[Unit]',
        `Requires=${name}-pod.service`,
        `After=${name}-pod.service`,
        '',
        '[Container]',
        `ContainerName=${name}-app`,
        'Image=registry.example.org/demo:1',
        `Pod=${name}.pod`,
        `EnvironmentFile=@@rick:path:env/${name}.env@@`,
        `User=@@rick:uid:${name}@@:@@rick:gid:${name}@@`,
        'PodmanArgs=--group-add @@rick:gid:postgres-clients@@',
        '',
        '[Install]',
        'WantedBy=multi-user.target',
        '',
      ].join('\n'),
    },
    {
      path: `env/${name}.env`,
      content: `MARKER=${marker}\nDB_PASSWORD=@@rick:secret:db_password@@\nCACHE_URL=unix:///run/valkey.sock?password=@@rick:secret:db_password:url@@\n`,
      mode: 0o600,
    },
    // The service user is the bundle's own, as a bundle's users must be.
    { path: `sysusers.d/${name}.conf`, content: `u ${name} - "${name}" /var/lib/${name}\n` },
  ];
}

export interface BuiltTestBundle {
  manifest: Manifest;
  tgz: Buffer;
}

export function buildTestBundle(spec: FactoryBundle = {}): BuiltTestBundle {
  const name = spec.name ?? 'demo';
  const files = spec.files ?? sampleFiles(name);
  const entries: PackEntry[] = [];
  const facts = new Map<string, { kind: (typeof factKinds)[number]; name: string }>();
  const manifestFiles = files.map((f) => {
    const data = Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content);
    const dir = f.path.split('/')[0] ?? '';
    const kind = f.kind ?? kindByDir[dir] ?? 'quadlet';
    const mode = f.mode ?? 0o644;
    entries.push({ path: f.path, data, mode });
    if (kind !== 'installer') {
      for (const ref of scanPlaceholders(data.toString('utf8')).refs) {
        if ((factKinds as readonly string[]).includes(ref.kind)) {
          facts.set(`${ref.kind}:${ref.name}`, {
            kind: ref.kind as (typeof factKinds)[number],
            name: ref.name,
          });
        }
      }
    }
    return { path: f.path, kind, sha256: sha256(data), size: data.length, mode };
  });
  const units = manifestFiles
    .filter((f) => f.kind === 'quadlet' && /\.(container|pod)$/.test(f.path))
    .map((f) => f.path.slice('quadlet/'.length));
  let manifest: Record<string, unknown> = {
    schemaVersion: spec.needs ? 2 : 1,
    name,
    version: spec.version ?? '1.0.0',
    createdAt: '2024-01-01T00:00:00.000Z',
    source: { commit: null },
    requires: { podman: '5.3.0' },
    files: manifestFiles,
    facts: [...facts.values()].sort((a, b) =>
      `${a.kind}:${a.name}` < `${b.kind}:${b.name}` ? -1 : 1,
    ),
    services:
      spec.services ??
      units.map((unit) => ({
        unit,
        service: serviceNameForUnit(unit),
        activeTimeoutSec: 30,
        checks: [],
      })),
    ...(spec.needs ? { needs: { ...emptyNeeds(), ...spec.needs } } : {}),
  };
  if (spec.manifestPatch) manifest = spec.manifestPatch(manifest);
  entries.push({
    path: MANIFEST_PATH,
    data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`),
    mode: 0o644,
  });
  const parsed = manifestSchema.safeParse(manifest);
  return {
    // Tests that break the manifest on purpose get the raw object back.
    manifest: (parsed.success ? parsed.data : manifest) as Manifest,
    tgz: packTarGz(entries, { mtime: 1_700_000_000 }),
  };
}

export { serializeManifest };

export interface WrittenBundle {
  bundlePath: string;
  signaturePath: string;
  manifest: Manifest;
  tgz: Buffer;
}

/** Writes `<dir>/<name>-<version>.tgz` and its detached signature by `key`. */
export async function writeSignedBundle(
  dir: string,
  key: TestKey,
  spec: FactoryBundle = {},
): Promise<WrittenBundle> {
  const { manifest, tgz } = buildTestBundle(spec);
  await mkdir(dir, { recursive: true });
  const bundlePath = join(dir, `${spec.name ?? 'demo'}-${spec.version ?? '1.0.0'}.tgz`);
  const signaturePath = `${bundlePath}.sig`;
  await writeFile(bundlePath, tgz);
  await writeFile(signaturePath, await signDetached(tgz, key.privateKey));
  return { bundlePath, signaturePath, manifest, tgz };
}
