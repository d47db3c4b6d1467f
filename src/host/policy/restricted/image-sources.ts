/** `image-sources`: an image read from the host through a transport (`oci-archive:/…`, `docker-daemon:`). */
import type { UnitLine } from '../../../bundle/unit-file.js';
import { lookupLast } from '../../../bundle/unit-file.js';
import { imageSource } from '../controls.js';
import {
  cannotTell,
  expandValue,
  hostPath,
  push,
  pushControl,
  type RuleId,
  refuse,
  type UnitContext,
} from './context.js';
import type { RestrictedRule, RuleDoc } from './rule.js';
import { isSensitivePath } from './sensitive-paths.js';

/** An image reference (`Image=`, `--infra-image`): a transport may read the host. */
export function imageUse(ctx: UnitContext, line: UnitLine, written: string, raw: string): void {
  const value = expandValue(raw, ctx.service);
  if (value === undefined) {
    cannotTell(ctx, line, written, 'the image');
    return;
  }
  const source = imageSource(value);
  if (source === undefined) return;
  if ('rule' in source) {
    pushControl(ctx, line, written, source);
    return;
  }
  const path = hostPath(ctx, source.path);
  if (!path) {
    refuse(ctx, line, written, 'image-sources', `${source.detail}, which is not a plain path`);
    return;
  }
  const rule: RuleId = isSensitivePath(path) ? 'sensitive-paths' : 'image-sources';
  const access = path === '/var/run/docker.sock' ? 'rw' : 'ro';
  push(ctx, line, written, rule, { kind: 'paths', value: `${path}:${access}` }, source.detail);
}

export const imageSourcesRule: RestrictedRule = {
  rules: ['image-sources'],
  flags: {
    'infra-image': ({ ctx, line, written, raw }) => imageUse(ctx, line, written, raw),
  },
  keyChecks: {
    image: {
      keys: ['Image'],
      check: (ctx, { group }) => {
        const image = lookupLast(ctx.unit, group, 'Image');
        if (image && image.value !== '') imageUse(ctx, image, `Image=${image.value}`, image.value);
      },
    },
  },
};

/** This module's rows of docs/policy.md's rule table (rule-docs.ts; not part of the judge). */
export const imageSourcesDocs: readonly RuleDoc[] = [
  {
    id: 'image-sources',
    podSecurity: 'HostPath Volumes (Baseline)',
    refuses:
      'an image read from the host: `Image=` (of a `.container`, `.image` or `.volume` unit), `--infra-image` or `Mount=type=image` with the transports `oci-archive:`, `docker-archive:`, `oci:`, `dir:`, `sif:`, `tarball:`, `ostree:` read that host path (`path:ro`), `docker-daemon:` talks to `/var/run/docker.sock` (`path /var/run/docker.sock:rw`, a sensitive path), `containers-storage:[…]` names another image store (`privileged`)',
    allows: '`paths`',
  },
];
