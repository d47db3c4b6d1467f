/**
 * The bundle manifest: `manifest.json` at the root of every bundle.
 * This schema is the contract between rick-bundle and rick-install; its JSON
 * Schema is published as schema/manifest.schema.json.
 */
import semver from 'semver';
import * as z from 'zod';
import { databaseDeclarationProblems, databaseNeed, databaseSchema } from './databases.js';
import { needsSchema } from './needs.js';
import { checkPlaceholderName, factKinds } from './placeholders.js';
import { defaultServiceName } from './quadlet-units.js';
import './zod.js';

export const MANIFEST_PATH = 'manifest.json';
/**
 * The version rick-bundle writes. Every version up to it is read: 1 (no
 * declared needs) and 2 (adds `needs`). A manifest of a later version is
 * refused by the schema, so an installer never misreads a contract it
 * predates.
 */
export const MANIFEST_SCHEMA_VERSION = 2;
export const manifestSchemaVersions = [1, 2] as const;

export const bundleNamePattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A relative POSIX path inside a bundle: no leading `/`, no `.` or `..` segments. */
export const bundlePathPattern =
  /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9_.@+-]+(?:\/[A-Za-z0-9_.@+-]+)*$/;

/** The kinds of file a bundle renders from templates, in the order they are rendered. */
export const templateKinds = [
  'quadlet',
  'systemd',
  'caddy',
  'env',
  'sysusers',
  'tmpfiles',
] as const;

/** Every kind of bundle file: the rendered kinds and the installer. */
export const fileKinds = [...templateKinds, 'installer'] as const;
export type FileKind = (typeof fileKinds)[number];

/**
 * The kinds a `path` token (`bundle_path()`) may name: the only files the
 * host writes at `generations/<n>/bundles/<bundle>/<path>`, where the token
 * resolves. Units and sites live where quadlet, the unit generator and
 * Caddy read them, and the installer is the generation's, not the bundle's:
 * a token naming one would name a file that does not exist.
 */
export const pathTokenKinds: ReadonlySet<FileKind> = new Set(['env', 'sysusers', 'tmpfiles']);

/** Why a `path` token may not name a file of this kind, after "names". */
export function pathTokenRefusal(kind: FileKind): string {
  const where: Record<FileKind, string> = {
    quadlet: 'a Quadlet unit, which the host writes to generations/<n>/quadlet/<bundle>/',
    systemd: 'a plain unit, which the host writes to generations/<n>/systemd/<bundle>/',
    caddy: 'a Caddy site, which the host writes to generations/<n>/caddy/<bundle>/',
    installer:
      "the installer, which the host writes to generations/<n>/installer/ (the generation's, not the bundle's)",
    env: 'an env file',
    sysusers: 'a sysusers.d fragment',
    tmpfiles: 'a tmpfiles.d fragment',
  };
  return `${where[kind]}, not to generations/<n>/bundles/<bundle>/ where the path resolves: bundle_path() takes env, sysusers.d and tmpfiles.d files only`;
}

/** Top-level directory of each kind inside the bundle. */
export const fileKindDirs: Record<FileKind, string> = {
  quadlet: 'quadlet',
  systemd: 'systemd',
  caddy: 'caddy',
  env: 'env',
  sysusers: 'sysusers.d',
  tmpfiles: 'tmpfiles.d',
  installer: 'installer',
};

/** Quadlet unit types, by file extension. */
export const quadletUnitPattern =
  /^[A-Za-z0-9_.@-]+\.(container|pod|volume|network|kube|image|build)$/;
/**
 * Plain systemd units a bundle may carry beside its Quadlet units. No
 * templates (`@`): an instance name is host configuration, not a bundle file.
 */
export const systemdUnitPattern = /^[A-Za-z0-9_.-]+\.(service|timer|path|socket)$/;
/** A Caddy site snippet, imported by the host's Caddyfile. */
export const caddySitePattern = /^[A-Za-z0-9_.@+-]+\.caddy$/;

/** What the file name of each unit-like kind must look like. */
const namePatterns: Partial<Record<FileKind, { pattern: RegExp; message: string }>> = {
  systemd: {
    pattern: systemdUnitPattern,
    message: 'a systemd unit is named <name>.service, .timer, .path or .socket (no templates)',
  },
  caddy: { pattern: caddySitePattern, message: 'a Caddy site is named <name>.caddy' },
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
  .superRefine((f, ctx) => {
    const dir = `${fileKindDirs[f.kind]}/`;
    if (!f.path.startsWith(dir)) {
      ctx.addIssue({
        code: 'custom',
        message: 'path must lie in the directory of its kind',
        path: ['path'],
      });
      return;
    }
    // Units and sites lie directly in their directory: their file name is
    // their name on the host (a systemd unit name, a site of /etc/caddy/rick).
    const rule = namePatterns[f.kind];
    const name = f.path.slice(dir.length);
    if (rule && !rule.pattern.test(name)) {
      ctx.addIssue({ code: 'custom', message: rule.message, path: ['path'] });
    }
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

/** Only loopback URLs: the gate checks this host's own services. */
export const loopbackUrlSchema = z
  .string()
  .url()
  .refine((u) => /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//.test(u), {
    message: 'must be an http:// URL on loopback (127.0.0.1, localhost or [::1])',
  });

/** A Host header: a host name, optionally with a port. */
export const hostHeaderSchema = z
  .string()
  .regex(
    /^(?=.{1,253}(?::\d{1,5})?$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::\d{1,5})?$/,
    'must be a host name, optionally with :port',
  );

export const httpCheckSchema = z.strictObject({
  type: z.literal('http'),
  /** Only loopback URLs: the gate checks this host's own services. */
  url: loopbackUrlSchema,
  /**
   * The Host header to send, so that a check can go through the host's Caddy
   * to a site of the bundle (the URL stays on loopback).
   */
  host: hostHeaderSchema.optional(),
  /** Seconds to wait for a 2xx before the gate fails. */
  timeoutSec: z.number().int().positive().max(3600),
  /** Seconds between attempts. */
  intervalSec: z.number().positive().max(60).default(2),
});
export type HttpCheck = z.infer<typeof httpCheckSchema>;

export const serviceSchema = z.strictObject({
  /**
   * The unit file: a Quadlet unit (`authentik-server.container`) or a plain
   * systemd unit of the bundle (`valkey-socket-fix.service`, `backup.timer`).
   */
  unit: z
    .string()
    .refine(
      (u) => quadletUnitPattern.test(u) || systemdUnitPattern.test(u),
      'must name a Quadlet unit or a plain .service, .timer, .path or .socket unit',
    ),
  /**
   * The systemd unit rick starts and gates: what quadlet generates from a
   * Quadlet unit (`authentik-server.service`), the plain unit itself otherwise.
   */
  service: z.string().regex(/^[A-Za-z0-9_.@-]+\.(service|timer|path|socket)$/),
  /** Seconds the service has to become active. */
  activeTimeoutSec: z.number().int().positive().max(3600).default(120),
  /**
   * Seconds the service must then stay active, with the same main process
   * and no automatic restart, before the gate passes it. Absent: 5
   * (activation-budget.ts). Written only when declared, so that a bundle
   * that does not declare it reads as before.
   */
  settleSec: z.number().int().nonnegative().max(600).optional(),
  checks: z.array(httpCheckSchema).default([]),
});
export type Service = z.infer<typeof serviceSchema>;

/**
 * The compatibility rule of manifest.json. Every installer already on hosts
 * (each host runs its live generation's, and its update timer uses that one
 * to verify and install the next release) validates this object strictly:
 * a top-level field it does not know makes it refuse the whole bundle. A new
 * field here therefore stops every host's update timer, and the fleet can no
 * longer update itself. Add one only when an older installer MUST refuse the
 * bundle, because it cannot be installed right without understanding the
 * field (as `databases`: the installer creates them). A record hosts do not
 * need goes into the build record (installer/build-record.json,
 * src/bundle/build-record.ts), a file the manifest lists and signs and hosts
 * ignore. test/integration/manifest-compat.test.ts holds the fields the
 * released installers know.
 */
export const manifestSchema = z
  .strictObject({
    schemaVersion: z.literal(manifestSchemaVersions),
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
    /** What the units need from a host beyond the restricted profile (schemaVersion 2). */
    needs: needsSchema.optional(),
    /**
     * The PostgreSQL databases the installer creates (src/bundle/databases.ts);
     * absent when none, so that installers that predate them read the rest.
     */
    databases: z.array(databaseSchema).optional(),
  })
  .superRefine((m, ctx) => {
    if (m.databases !== undefined) {
      const secrets = new Set(m.facts.filter((f) => f.kind === 'secret').map((f) => f.name));
      for (const message of databaseDeclarationProblems(m.databases, secrets)) {
        ctx.addIssue({ code: 'custom', message, path: ['databases'] });
      }
    }
    // Each declaration is a need the host grants, and each such need a declaration.
    const declared = [...new Set((m.databases ?? []).map(databaseNeed))].sort();
    const needed = [...new Set(m.needs?.databases ?? [])].sort();
    if (declared.join(' ') !== needed.join(' ')) {
      ctx.addIssue({
        code: 'custom',
        message: `needs.databases (${needed.join(' ') || 'none'}) must name exactly the declared databases (${declared.join(' ') || 'none'})`,
        path: ['needs', 'databases'],
      });
    }
    if (m.schemaVersion >= 2 && m.needs === undefined) {
      ctx.addIssue({ code: 'custom', message: 'schemaVersion 2 declares needs', path: ['needs'] });
    }
    if (m.schemaVersion === 1 && m.needs !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'schemaVersion 1 has no needs', path: ['needs'] });
    }
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
    const units = new Set(m.files.filter((f) => isUnitKind(f.kind)).map((f) => f.path));
    m.services.forEach((s, i) => {
      if (!units.has(unitFilePath(s.unit))) {
        ctx.addIssue({
          code: 'custom',
          message: `service unit ${s.unit} is not a unit file of the bundle`,
          path: ['services', i, 'unit'],
        });
      } else if (isSystemdUnit(s.unit) && s.service !== s.unit) {
        // A Quadlet unit's service is judged with its ServiceName= (bundle-units.ts).
        ctx.addIssue({
          code: 'custom',
          message: `the service of the plain unit ${s.unit} is ${s.unit}, not ${s.service}`,
          path: ['services', i, 'service'],
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

/** Kinds whose files are units systemd loads (through quadlet or directly). */
export function isUnitKind(kind: FileKind): kind is 'quadlet' | 'systemd' {
  return kind === 'quadlet' || kind === 'systemd';
}

/** True for a plain systemd unit name (`x.service`, `x.timer`, …) rather than a Quadlet unit. */
export function isSystemdUnit(unit: string): boolean {
  return systemdUnitPattern.test(unit);
}

/** The bundle path of a service's unit file: `quadlet/<unit>` or `systemd/<unit>`. */
export function unitFilePath(unit: string): string {
  return `${isSystemdUnit(unit) ? fileKindDirs.systemd : fileKindDirs.quadlet}/${unit}`;
}

/**
 * The systemd unit a unit file becomes, from its name alone: the unit itself
 * for a plain systemd unit; for a Quadlet unit the service quadlet derives
 * (`x.pod` → `x-pod.service`), which a unit's `ServiceName=` overrides
 * (bundle-units.ts takes that into account).
 */
export function serviceNameForUnit(unit: string): string {
  return isSystemdUnit(unit) ? unit : defaultServiceName(unit);
}

/** Canonical serialisation: stable key order from the schema, two-space indent, final newline. */
export function serializeManifest(manifest: Manifest): string {
  // No databases, no `needs.databases`: installers that predate them read such a manifest.
  const needs = manifest.needs;
  if (needs !== undefined && needs.databases.length === 0) {
    const { databases: _none, ...rest } = needs;
    return `${JSON.stringify({ ...manifest, needs: rest }, null, 2)}\n`;
  }
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
