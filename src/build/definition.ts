/**
 * The bundle definition: bundles/<name>/bundle.yaml. It names the bundle,
 * declares its variables with their defaults, lists the templates of each
 * file kind, and the services to start with their health checks.
 *
 *     name: authentik
 *     variables:
 *       authentik_version: "2025.10.2"
 *     files:
 *       quadlet: [quadlet/authentik.pod.j2, quadlet/authentik-server.container.j2]
 *       systemd: [systemd/authentik-backup.timer.j2, systemd/authentik-backup.service.j2]
 *       caddy: [caddy/authentik.caddy.j2]
 *       env: [env/authentik.env.j2]
 *       sysusers: [sysusers.d/authentik.conf.j2]
 *       tmpfiles: [tmpfiles.d/authentik.conf.j2]
 *     services:
 *       - unit: authentik-server.container
 *         activeTimeoutSec: 300
 *         settleSec: 10              # default 5 (src/bundle/activation-budget.ts)
 *         checks:
 *           - { type: http, url: "http://127.0.0.1:9000/-/health/live/", timeoutSec: 300 }
 *     needs:                        # beyond the restricted profile (src/bundle/needs.ts)
 *       groups: [postgres-clients, valkey-clients]
 *       paths: ["{{ authentik_home }}:rw", "/var/run/postgresql:rw"]
 *       databases:                  # created by the installer (src/bundle/databases.ts)
 *         - { postgresql: authentik, owner: authentik, password: authentik_db_password }
 *
 * Each template renders to the file named by its base name without `.j2`, in
 * the directory of its kind (quadlet/, systemd/, caddy/, env/, sysusers.d/,
 * tmpfiles.d/).
 */

import * as z from 'zod';
import {
  bundleNamePattern,
  bundlePathPattern,
  hostHeaderSchema,
  httpCheckSchema,
  loopbackUrlSchema,
  serviceSchema,
  templateKinds,
} from '../bundle/manifest.js';
import { type NeedKind, needKinds } from '../bundle/needs.js';
import { RickError } from '../errors.js';
import '../bundle/zod.js';

export const BUNDLE_DEFINITION_FILE = 'bundle.yaml';

const variableName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The template kinds of bundle.yaml's `files`, in the order they are rendered. */
export { templateKinds };

/** Names the renderer itself provides; a definition cannot redefine them. */
export const reservedVariables = [
  'bundle_name',
  'bundle_version',
  'gid',
  'uid',
  'secret',
  'bundle_path',
] as const;

const templatePath = z
  .string()
  .regex(bundlePathPattern, 'must be a relative path inside the bundle, without . or ..')
  .refine((p) => /[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*$/.test(p), 'must name a file');

const quadletTemplate = templatePath.refine(
  (p) => /\.(container|pod|volume|network|kube|image|build)(\.j2)?$/.test(p),
  'must be a Quadlet unit (.container, .pod, .volume, .network, .kube, .image, .build), optionally .j2',
);
const systemdTemplate = templatePath.refine(
  (p) => /\.(service|timer|path|socket)(\.j2)?$/.test(p) && !outputName(p).includes('@'),
  'must be a plain systemd unit (.service, .timer, .path, .socket; no templates), optionally .j2',
);
const caddyTemplate = templatePath.refine(
  (p) => /\.caddy(\.j2)?$/.test(p),
  'must be a Caddy site snippet (.caddy), optionally .j2',
);
const confTemplate = templatePath.refine(
  (p) => /\.conf(\.j2)?$/.test(p),
  'must be a .conf fragment, optionally .j2',
);
const envTemplate = templatePath.refine(
  (p) => /\.env(\.j2)?$/.test(p),
  'must be an .env file, optionally .j2',
);

export const variablesSchema = z.record(z.string(), z.unknown()).superRefine((vars, ctx) => {
  for (const name of Object.keys(vars)) {
    if (!variableName.test(name)) {
      ctx.addIssue({
        code: 'custom',
        message: 'variable names are letters, digits and _, not starting with a digit',
        path: [name],
      });
    }
  }
});

/** A value judged by `schema` now, or, when it is a template, once rendered. */
function templateOr(schema: z.ZodType<string>) {
  return z
    .string()
    .min(1)
    .superRefine((value, ctx) => {
      if (/\{[{%]/.test(value)) return;
      const result = schema.safeParse(value);
      if (!result.success) {
        for (const issue of result.error.issues)
          ctx.addIssue({ code: 'custom', message: issue.message });
      }
    });
}

/**
 * A check as bundle.yaml writes it: its URL and Host may use variables
 * (`http://127.0.0.1:{{ port }}/`), so they are judged as the manifest's
 * once rendered.
 */
const checkDefinitionSchema = httpCheckSchema.extend({
  url: templateOr(loopbackUrlSchema),
  host: templateOr(hostHeaderSchema).optional(),
});

const serviceDefinitionSchema = serviceSchema.omit({ service: true }).extend({
  checks: z.array(checkDefinitionSchema).default([]),
});

/**
 * `needs` as written in bundle.yaml: lists of strings that may be templates
 * (`"{{ authentik_home }}:rw"`), checked in their canonical form once
 * rendered (src/build/needs-check.ts).
 */
const needsDefinitionSchema = z.strictObject({
  ...Object.fromEntries(
    needKinds
      .filter((kind) => kind !== 'databases')
      .map((kind) => [kind, z.array(z.string()).default([])]),
  ),
  // Each database is a small record, its strings templates like the rest.
  databases: z
    .array(
      z.strictObject({
        postgresql: z.string(),
        owner: z.string(),
        password: z.string(),
      }),
    )
    .default([]),
  privileged: z.boolean().default(false),
}) as unknown as z.ZodType<
  Record<Exclude<NeedKind, 'databases'>, string[]> & {
    databases: { postgresql: string; owner: string; password: string }[];
    privileged: boolean;
  }
>;

export const bundleDefinitionSchema = z
  .strictObject({
    name: z.string().regex(bundleNamePattern, 'must be lowercase letters, digits and dashes'),
    description: z.string().optional(),
    variables: variablesSchema.default({}),
    files: z.strictObject({
      quadlet: z.array(quadletTemplate).default([]),
      systemd: z.array(systemdTemplate).default([]),
      caddy: z.array(caddyTemplate).default([]),
      env: z.array(envTemplate).default([]),
      sysusers: z.array(confTemplate).default([]),
      tmpfiles: z.array(confTemplate).default([]),
    }),
    services: z.array(serviceDefinitionSchema).default([]),
    needs: needsDefinitionSchema.optional(),
  })
  .superRefine((d, ctx) => {
    for (const name of Object.keys(d.variables)) {
      if ((reservedVariables as readonly string[]).includes(name)) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} is provided by rick and cannot be redefined`,
          path: ['variables', name],
        });
      }
    }
    if (d.files.quadlet.length + d.files.systemd.length + d.files.caddy.length === 0) {
      ctx.addIssue({
        code: 'custom',
        message: 'a bundle needs at least one unit (quadlet or systemd) or Caddy site',
        path: ['files'],
      });
    }
    const outputs = new Map<string, string>();
    for (const kind of templateKinds) {
      d.files[kind].forEach((template, i) => {
        const out = `${kind}/${outputName(template)}`;
        if (outputs.has(out)) {
          ctx.addIssue({
            code: 'custom',
            message: `renders to the same file as ${outputs.get(out)}`,
            path: ['files', kind, i],
          });
        }
        outputs.set(out, template);
      });
    }
    const units = new Set([...d.files.quadlet, ...d.files.systemd].map(outputName));
    d.services.forEach((s, i) => {
      if (!units.has(s.unit)) {
        ctx.addIssue({
          code: 'custom',
          message: `${s.unit} is not one of the bundle's quadlet or systemd files`,
          path: ['services', i, 'unit'],
        });
      }
    });
  });

export type BundleDefinition = z.infer<typeof bundleDefinitionSchema>;
export type TemplateKind = keyof BundleDefinition['files'];

/** The file a template renders to: its base name without `.j2`. */
export function outputName(template: string): string {
  const base = template.slice(template.lastIndexOf('/') + 1);
  return base.endsWith('.j2') ? base.slice(0, -3) : base;
}

export interface DefinitionProblem {
  path: string;
  message: string;
}

function problemsOf(error: z.ZodError): DefinitionProblem[] {
  return error.issues.map((issue) => ({
    path: issue.path.length ? issue.path.map(String).join('.') : '(root)',
    message: issue.message,
  }));
}

/** Validates a parsed bundle.yaml whole, reporting every problem at once. */
export function parseBundleDefinition(
  value: unknown,
): { ok: true; definition: BundleDefinition } | { ok: false; problems: DefinitionProblem[] } {
  const result = bundleDefinitionSchema.safeParse(value);
  if (result.success) return { ok: true, definition: result.data };
  return { ok: false, problems: problemsOf(result.error) };
}

/** Validates the top level of a --vars file: a mapping of variable names. */
export function parseVariablesFile(
  value: unknown,
): { ok: true; variables: Record<string, unknown> } | { ok: false; problems: DefinitionProblem[] } {
  if (value === null || value === undefined) return { ok: true, variables: {} };
  const result = variablesSchema.safeParse(value);
  if (!result.success) return { ok: false, problems: problemsOf(result.error) };
  const reserved = Object.keys(result.data).filter((name) =>
    (reservedVariables as readonly string[]).includes(name),
  );
  if (reserved.length > 0) {
    return {
      ok: false,
      problems: reserved.map((name) => ({
        path: name,
        message: `${name} is provided by rick and cannot be set`,
      })),
    };
  }
  return { ok: true, variables: result.data };
}

export function formatDefinitionProblems(problems: DefinitionProblem[]): string {
  return problems.map((p) => `${p.path}: ${p.message}`).join('; ');
}

/**
 * Defaults, then each vars file in order, later ones winning, as Ansible
 * group_vars do. Mappings are replaced, not merged (Ansible's default).
 */
export function mergeVariables(
  defaults: Record<string, unknown>,
  overrides: readonly Record<string, unknown>[],
): Record<string, unknown> {
  return Object.assign({}, defaults, ...overrides);
}

/**
 * Renders variable values that are templates themselves (`"{{ home }}/logs"`),
 * repeatedly, until nothing changes, as Ansible resolves variables lazily.
 */
export function resolveVariables(
  variables: Record<string, unknown>,
  render: (source: string, context: Record<string, unknown>, where: string) => string,
): Record<string, unknown> {
  let current = { ...variables };
  const isTemplate = (v: unknown): v is string => typeof v === 'string' && /\{[{%]/.test(v);
  for (let pass = 0; pass < 10; pass++) {
    const next: Record<string, unknown> = { ...current };
    let changed = false;
    for (const [name, value] of Object.entries(current)) {
      if (!isTemplate(value)) continue;
      next[name] = render(value, current, `variable ${name}`);
      if (next[name] !== value) changed = true;
    }
    current = next;
    if (!changed) break;
  }
  const cyclic = Object.keys(current).filter((k) => isTemplate(current[k]));
  if (cyclic.length > 0) {
    throw new RickError(
      'DEFINITION_INVALID',
      `variables refer to each other in a cycle: ${cyclic.join(', ')}`,
    );
  }
  return current;
}
