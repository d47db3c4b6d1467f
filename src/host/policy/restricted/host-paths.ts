/**
 * `host-paths`: bind mounts of host paths and the host files podman reads
 * or writes for the container; a sensitive path is its own rule
 * (sensitive-paths.ts), another bundle's named volume the `volumes` rule.
 */
import type { UnitLine } from '../../../bundle/unit-file.js';
import { lookupLast } from '../../../bundle/unit-file.js';
import { namedVolume } from '../controls.js';
import {
  cannotTell,
  expandValue,
  hostPath,
  placeholderOnly,
  push,
  pushControl,
  type RuleId,
  refuse,
  type UnitContext,
} from './context.js';
import { imageUse } from './image-sources.js';
import type { FlagCheck, RestrictedRule, RuleDoc } from './rule.js';
import { isSensitivePath } from './sensitive-paths.js';

export function pathUse(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  path: string,
  access: 'ro' | 'rw',
  what: string,
): void {
  const rule: RuleId = isSensitivePath(path) ? 'sensitive-paths' : 'host-paths';
  push(ctx, line, written, rule, { kind: 'paths', value: `${path}:${access}` }, what);
}

/** A bind source: host path, bundle file (read-only only) or named volume. */
export function bindSource(
  ctx: UnitContext,
  line: UnitLine,
  written: string,
  raw: string,
  access: 'ro' | 'rw',
  what: string,
): void {
  const placeholder = placeholderOnly.exec(raw);
  if (placeholder?.[1] === 'path') {
    if (access === 'rw') {
      refuse(
        ctx,
        line,
        written,
        'host-paths',
        `a bundle file mounted read-write could change its own generation; mount it with ro`,
      );
    }
    return;
  }
  if (raw.includes('@@rick:')) {
    refuse(ctx, line, written, 'unjudged', `${what} holds a host fact`);
    return;
  }
  const value = expandValue(raw, ctx.service);
  if (value === undefined) {
    cannotTell(ctx, line, written, what);
    return;
  }
  if (!value.startsWith('/') && !value.startsWith('.')) {
    pushControl(ctx, line, written, namedVolume(ctx.names, value));
    return;
  }
  const path = hostPath(ctx, value);
  if (!path) {
    refuse(ctx, line, written, 'host-paths', `${what} is not a plain path`);
    return;
  }
  pathUse(ctx, line, written, path, access, what);
}

/** `-v SRC:DST[:OPTIONS]` / Volume=. */
function volumeUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  // A placeholder holds colons of its own (`@@rick:path:env/x@@`): it is one source.
  const token = /^@@rick:[^@]*@@/.exec(value)?.[0];
  const parts = token
    ? [token, ...value.slice(token.length).replace(/^:/, '').split(':')]
    : value.split(':');
  if (token && value.length > token.length && value[token.length] !== ':') {
    refuse(ctx, line, written, 'unjudged', 'the volume source holds a host fact');
    return;
  }
  if (parts.length < 2) return; // an anonymous volume
  const options = (parts[2] ?? '').split(',').filter(Boolean);
  for (const o of options) {
    if (/^r?shared$/.test(o)) {
      refuse(
        ctx,
        line,
        written,
        'privileged',
        `mount propagation ${o} lets the container's mounts reach the host`,
      );
    }
  }
  const writes = options.some((o) => ['z', 'Z', 'U'].includes(o));
  const readOnly = options.some((o) => ['ro', 'O'].includes(o)) && !writes;
  bindSource(ctx, line, written, parts[0]!, readOnly ? 'ro' : 'rw', 'the volume source');
}

/** `--mount type=bind,source=…,destination=…,ro` / Mount=, read as podman's CSV. */
function mountUse(ctx: UnitContext, line: UnitLine, written: string, value: string): void {
  if (value.includes('"')) {
    refuse(ctx, line, written, 'unjudged', 'a quoted mount option');
    return;
  }
  const fields = new Map<string, string>();
  for (const field of value.split(',')) {
    const eq = field.indexOf('=');
    fields.set(eq === -1 ? field : field.slice(0, eq), eq === -1 ? 'true' : field.slice(eq + 1));
  }
  const source = fields.get('source') ?? fields.get('src');
  const type = fields.get('type') ?? (source?.startsWith('/') ? 'bind' : 'volume');
  const prop = fields.get('bind-propagation');
  if (prop && /^r?shared$/.test(prop)) {
    refuse(
      ctx,
      line,
      written,
      'privileged',
      `mount propagation ${prop} lets the container's mounts reach the host`,
    );
  }
  switch (type) {
    case 'bind':
    case 'glob': {
      if (source === undefined) return;
      const writes =
        fields.has('relabel') ||
        ['true', '1'].includes(fields.get('U') ?? fields.get('chown') ?? '');
      const ro = ['ro', 'readonly'].some((k) => ['true', '1'].includes(fields.get(k) ?? ''));
      const src = type === 'glob' ? source.replace(/\/[^/]*[*?[].*$/, '') || '/' : source;
      bindSource(ctx, line, written, src, ro && !writes ? 'ro' : 'rw', 'the mount source');
      return;
    }
    case 'volume':
      if (source !== undefined && source !== '') {
        if (source.includes('@@rick:')) {
          refuse(ctx, line, written, 'unjudged', 'the volume name holds a host fact');
        } else pushControl(ctx, line, written, namedVolume(ctx.names, source));
      }
      return;
    case 'image':
      if (source !== undefined) imageUse(ctx, line, written, source);
      return;
    case 'tmpfs':
    case 'ramfs':
    case 'devpts':
    case 'artifact':
      return;
    default:
      refuse(ctx, line, written, 'unjudged', `mount type ${type} is not known`);
  }
}

/** Host files podman reads (`ro`) or writes (`rw`) for the container, by flag. */
const hostFileFlags: Record<string, 'ro' | 'rw'> = {
  'env-file': 'ro',
  'init-path': 'ro',
  'hosts-file': 'ro',
  'label-file': 'ro',
  cidfile: 'rw',
  'conmon-pidfile': 'rw',
  pidfile: 'rw',
  'pod-id-file': 'rw',
  'infra-conmon-pidfile': 'rw',
};

const hostFile =
  (access: 'ro' | 'rw'): FlagCheck =>
  ({ ctx, line, written, name, raw, value }) => {
    const placeholder = placeholderOnly.exec(raw);
    if (placeholder?.[1] === 'path' && access === 'ro') return;
    const path = value.startsWith('/') ? hostPath(ctx, value) : undefined;
    if (!path) {
      refuse(ctx, line, written, 'host-paths', `--${name} ${value} is not an absolute host path`);
      return;
    }
    pathUse(
      ctx,
      line,
      written,
      path,
      access,
      `--${name} ${access === 'rw' ? 'writes' : 'reads'} a host file`,
    );
  };

export const hostPathsRule: RestrictedRule = {
  rules: ['host-paths'],
  flags: {
    ...Object.fromEntries(
      Object.entries(hostFileFlags).map(([flag, access]) => [flag, hostFile(access)]),
    ),
    volume: ({ ctx, line, written, raw, value }) =>
      volumeUse(ctx, line, written, raw.includes('@@rick:') ? raw : value),
    mount: ({ ctx, line, written, raw, value }) =>
      mountUse(ctx, line, written, raw.includes('@@rick:') ? raw : value),
    'log-opt': ({ ctx, line, written, value }) => {
      if (value.startsWith('path=')) {
        const path = hostPath(ctx, value.slice(5));
        if (!path || !value.slice(5).startsWith('/')) {
          refuse(ctx, line, written, 'host-paths', 'the log path is not an absolute host path');
        } else pathUse(ctx, line, written, path, 'rw', 'the log file is written on the host');
      }
    },
    'health-log-destination': ({ ctx, line, written, value }) => {
      if (value.startsWith('/')) {
        const path = hostPath(ctx, value);
        if (path) pathUse(ctx, line, written, path, 'rw', 'health logs are written on the host');
        else refuse(ctx, line, written, 'host-paths', 'not a plain host path');
      }
    },
  },
  keyChecks: {
    rootfs: {
      keys: ['Rootfs'],
      check: (ctx, { group }) => {
        const rootfs = lookupLast(ctx.unit, group, 'Rootfs');
        if (rootfs && rootfs.value !== '') {
          bindSource(
            ctx,
            rootfs,
            `Rootfs=${rootfs.value}`,
            rootfs.value,
            'rw',
            'the root file system',
          );
        }
      },
    },
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const hostPathsDocs: readonly RuleDoc[] = [
  {
    id: 'host-paths',
    podSecurity: 'HostPath Volumes (Baseline); Volume Types (Restricted)',
    refuses:
      "bind mounts of host paths (`Volume=/src:…`, `-v`, `Mount=type=bind|glob`, a `.volume` unit's `Device=` with `bind`), `Rootfs=`, and host files podman reads or writes for the container: `EnvironmentFile=`/`--env-file` (except the bundle's own files), `LogOpt=path=`, `HealthLogDestination=`, `--init-path`, `--hosts-file`, `--label-file`, `--cidfile`, `--pidfile`, `--conmon-pidfile`, `--pod-id-file`, `--infra-conmon-pidfile`. `:ro`/`:O` is read-only; `:z`, `:Z`, `:U` change the host's files and count as `rw`. The bundle's own named volumes, tmpfs and image mounts are free (like `emptyDir` and PVCs; other bundles' volumes are the `volumes` rule). A bundle file (`bundle_path()`) may be mounted read-only only: read-write (no `ro`, or with `z`, `Z`, `U`) it needs `privileged`, since a container that writes into its own generation makes every later update fail",
    allows: '`paths`',
  },
];
