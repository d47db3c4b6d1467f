import { describe, expect, it } from 'vitest';
import {
  bundleSysusers,
  checkFactPolicy,
  parseSysusers,
  requiredExistingAccounts,
  sysusersEffects,
} from '../../src/bundle/sysusers.js';
import { isRickError } from '../../src/errors.js';
import { buildTestBundle } from '../helpers/bundle-factory.js';

const fragment = [
  '# authentik',
  'u authentik - "Authentik" /var/lib/authentik /usr/sbin/nologin',
  'u! worker 990:authentik "Worker"',
  'g authentik-media -',
  'm authentik postgres-clients',
  'm authentik valkey-clients',
  'm authentik authentik-media',
  '',
].join('\n');

describe('sysusers.d fragments', () => {
  it('parses u, g, m and r lines with quoted fields', () => {
    const entries = parseSysusers(fragment, 'sysusers.d/authentik.conf');
    expect(entries.map((e) => e.type)).toEqual(['u', 'u', 'g', 'm', 'm', 'm']);
    expect(entries[0]).toMatchObject({
      type: 'u',
      name: 'authentik',
      id: '-',
      source: 'sysusers.d/authentik.conf:2',
    });
    expect(entries[1]).toMatchObject({ type: 'u', name: 'worker', id: '990:authentik' });
  });

  it('knows what will exist and which groups must already exist', () => {
    const effects = sysusersEffects(parseSysusers(fragment, 'f'));
    expect([...effects.users].sort()).toEqual(['authentik', 'worker']);
    expect([...effects.groups].sort()).toEqual(['authentik', 'authentik-media']);
    expect([...effects.referencedGroups].sort()).toEqual(['postgres-clients', 'valkey-clients']);
    expect([...effects.referencedUsers]).toEqual([]);
  });

  it('requires every infrastructure group a fact or an m line names but no u/g line creates', () => {
    const { manifest } = buildTestBundle({
      files: [
        {
          path: 'quadlet/a.container',
          content:
            'User=@@rick:uid:authentik@@\nPodmanArgs=--group-add @@rick:gid:postgres-clients@@ --group-add @@rick:gid:redis@@\n',
        },
        { path: 'sysusers.d/a.conf', content: fragment },
      ],
    });
    const files = new Map([['sysusers.d/a.conf', Buffer.from(fragment)]]);
    expect(requiredExistingAccounts(manifest, bundleSysusers(manifest, files))).toEqual({
      groups: ['postgres-clients', 'redis', 'valkey-clients'],
      users: [],
    });
  });

  it('refuses unknown line types, bad names and unbalanced quotes, all at once', () => {
    try {
      parseSysusers('x foo\nu ../x -\nu a "b\n', 'sysusers.d/bad.conf');
      expect.unreachable();
    } catch (error) {
      expect(isRickError(error) && error.code).toBe('BUNDLE_INVALID');
      const message = (error as Error).message;
      expect(message).toContain('sysusers.d/bad.conf:1: unknown line type "x"');
      expect(message).toContain('sysusers.d/bad.conf:2: invalid uid name "../x"');
      expect(message).toContain('sysusers.d/bad.conf:3: unbalanced quote');
    }
  });

  it('refuses root, id 0, privileged group membership and r lines', () => {
    try {
      parseSysusers(
        'u root 0\ng evil 0\nu svc 990:0\nm svc wheel\nm svc docker\nr - 100-200\n',
        'f',
      );
      expect.unreachable();
    } catch (error) {
      expect(isRickError(error) && error.code).toBe('BUNDLE_INVALID');
      expect((error as Error).message).toBe(
        'invalid sysusers.d fragment: f:1: a bundle may not define root or id 0; f:2: a bundle may not define root or id 0; f:3: a bundle may not define root or id 0; f:4: a bundle may not add svc to the privileged group wheel; f:5: a bundle may not add svc to the privileged group docker; f:6: r lines change id allocation for the whole host',
      );
    }
  });

  it('refuses a gid fact naming a privileged group', () => {
    const { manifest } = buildTestBundle({
      files: [
        {
          path: 'quadlet/a.container',
          content:
            'PodmanArgs=--group-add @@rick:gid:docker@@ --group-add @@rick:gid:disk@@ --group-add @@rick:gid:postgres-clients@@\n',
        },
      ],
    });
    expect(() => checkFactPolicy(manifest)).toThrow(
      'bundle demo asks for the GID of privileged group(s) disk, docker, which a service may not be given',
    );
    expect(() => checkFactPolicy(buildTestBundle().manifest)).not.toThrow();
  });
});
