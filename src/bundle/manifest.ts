/**
 * The bundle manifest: `manifest.json` at the root of every bundle.
 * This schema is the contract between rick-bundle and rick-install; its JSON
 * Schema is published as schema/manifest.schema.json.
 */
import semver from 'semver';
import * as z from 'zod';
import { checkPlaceholderName, factKinds } from './placeholders.js';
import { defaultServiceName } from './quadlet-units.js';
import './zod.js';

export const MANIFEST_PATH = 'manifest.json';
export const MANIFEST_SCHEMA_VERSION = 1;

export const bundleNamePattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A relative POSIX path inside a bundle: no leading `/`, no `.` or `..` segments. */
export const bundlePathPattern =
  /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9_.@+-]+(?:\/[A-Za-z0-9_.@+-]+)*$/;

export const fileKinds = ['quadlet', 'env', 'sysusers', 'tmpfiles', 'installer'] as const;
export type FileKind = (typeof fileKinds)[number];

/** Top-level directory of each kind inside the bundle and inside a generation. */
export const fileKindDirs: Record<FileKind, string> = {
  quadlet: 'quadlet',
  env: 'env',
  sysusers: 'sysusers.d',
  tmpfiles: 'tmpfiles.d',
  installer: 'installer',
};

const semverString = z.string().refine((v) => semver.valid(v) === v, {
  message: 'must be a semantic version such as 1.2.3',
});

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256');

export const fileEntrySchema = z
  .strictObject({
    path: z.string().max(255).regex(bundlePathPattern, 'must be a relative path without . or ..'),
    kind: z.enum(fileKinds),
    sha256,
    size: z.number().int().nonnegative(),
    mode: z
      .number()
      .int()
      .refine(
        (m) => (m & ~0o777) === 0,
        'must be a plain permission mode (no setuid, setgid or sticky bit)',
      ),
  })
  .refine((f) => f.path.startsWith(`${fileKindDirs[f.kind]}/`), {
    message: 'path must lie in the directory of its kind',
    path: ['path'],
  });
export type FileEntry = z.infer<typeof fileEntrySchema>;

export const factSchema = z
  .strictObject({
    kind: z.enum(factKinds),
    name: z.string(),
  })
  .superRefine((f, ctx) => {
    const problem = checkPlaceholderName(f.kind, f.name);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['name'] });
  });
export type Fact = z.infer<typeof factSchema>;

export const httpCheckSchema = z.strictObject({
  type: z.literal('http'),
  /** Only loopback URLs: the gate checks this host's own services. */
  url: z
    .string()
    .url()
    .refine((u) => /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//.test(u), {
      message: 'must be an http:// URL on loopback (127.0.0.1, localhost or [::1])',
    }),
  /** Seconds to wait for a 2xx before the gate fails. */
  timeoutSec: z.number().int().positive().max(3600),
  /** Seconds between attempts. */
  intervalSec: z.number().positive().max(60).default(2),
});
export type HttpCheck = z.infer<typeof httpCheckSchema>;

export const serviceSchema = z.strictObject({
  /** The Quadlet unit file, e.g. `authentik-server.container`. */
  unit: z.string().regex(/^[A-Za-z0-9_.@-]+\.(container|pod|volume|network|kube|image|build)$/),
  /** The systemd service quadlet generates from it, e.g. `authentik-server.service`. */
  service: z.string().regex(/^[A-Za-z0-9_.@-]+\.service$/),
  /** Seconds the service has to become active. */
  activeTimeoutSec: z.number().int().positive().max(3600).default(120),
  checks: z.array(httpCheckSchema).default([]),
});
export type Service = z.infer<typeof serviceSchema>;

export const manifestSchema = z
  .strictObject({
    schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
    name: z.string().regex(bundleNamePattern, 'must be lowercase letters, digits and dashes'),
    version: semverString,
    createdAt: z.iso.datetime(),
    source: z.strictObject({
      commit: z
        .string()
        .regex(/^[0-9a-f]{7,64}$/)
        .nullable(),
    }),
    requires: z.strictObject({
      /** Lowest podman version whose quadlet reads these units. */
      podman: semverString,
    }),
    files: z.array(fileEntrySchema),
    facts: z.array(factSchema),
    services: z.array(serviceSchema),
  })
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    m.files.forEach((f, i) => {
      const key = f.path.normalize('NFC').toLowerCase();
      if (seen.has(key)) {
        ctx.addIssue({
          code: 'custom',
          message: `duplicate path ${f.path}`,
          path: ['files', i, 'path'],
        });
      }
      seen.add(key);
    });
    const units = new Set(m.files.filter((f) => f.kind === 'quadlet').map((f) => f.path.slice(8)));
    m.services.forEach((s, i) => {
      if (!units.has(s.unit)) {
        ctx.addIssue({
          code: 'custom',
          message: `service unit ${s.unit} is not a quadlet file of the bundle`,
          path: ['services', i, 'unit'],
        });
      }
    });
  });
export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestInput = z.input<typeof manifestSchema>;

export interface ManifestProblem {
  path: string;
  message: string;
}

/** Validates untrusted JSON as a manifest, reporting every problem at once. */
export function parseManifest(
  value: unknown,
): { ok: true; manifest: Manifest } | { ok: false; problems: ManifestProblem[] } {
  const result = manifestSchema.safeParse(value);
  if (result.success) return { ok: true, manifest: result.data };
  return {
    ok: false,
    problems: result.error.issues.map((issue) => ({
      path: issue.path.length ? issue.path.join('.') : '(root)',
      message: issue.message,
    })),
  };
}

export function formatProblems(problems: ManifestProblem[]): string {
  return problems.map((p) => `${p.path}: ${p.message}`).join('; ');
}

/**
 * The service quadlet derives from a unit file name alone (`x.pod` →
 * `x-pod.service`); a unit's `ServiceName=` overrides it, which
 * bundle-units.ts takes into account.
 */
export function serviceNameForUnit(unit: string): string {
  return defaultServiceName(unit);
}

/** Canonical serialisation: stable key order from the schema, two-space indent, final newline. */
export function serializeManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
