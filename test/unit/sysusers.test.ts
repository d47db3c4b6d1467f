import { describe, expect, it } from 'vitest';
import {
  bundleSysusers,
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
    expect(entries[0]).toMatchObject({ primaryGroup: undefined });
    expect(entries[1]).toMatchObject({
      type: 'u',
      name: 'worker',
      id: '990:authentik',
      primaryGroup: 'authentik',
    });
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

  it('refuses root, id 0, numeric primary groups, ids taken from paths and r lines', () => {
    try {
      parseSysusers(
        [
          'u root 0',
          'g evil 0',
          'u svc 990:0',
          'u evil 990:4001',
          'u evil2 -:27',
          'u owner /root',
          'g grp /etc/shadow',
          'm root postgres-clients',
          'm svc root',
          'r - 100-200',
          '',
        ].join('\n'),
        'f',
      );
      expect.unreachable();
    } catch (error) {
      expect(isRickError(error) && error.code).toBe('BUNDLE_INVALID');
      expect((error as Error).message).toBe(
        [
          'invalid sysusers.d fragment: f:1: a bundle may not define root or id 0',
          'f:2: a bundle may not define root or id 0',
          'f:3: a bundle may not define root or id 0',
          'f:4: primary group 4001 is a number, which names whatever group holds that GID; name the group',
          'f:5: primary group 27 is a number, which names whatever group holds that GID; name the group',
          'f:6: id /root takes the id of whoever owns that path; use - or a number',
          'f:7: id /etc/shadow takes the id of whoever owns that path; use - or a number',
          'f:8: a bundle may not add root to postgres-clients',
          'f:9: a bundle may not add svc to root',
          'f:10: r lines change id allocation for the whole host',
        ].join('; '),
      );
    }
  });

  it('accepts suggested ids and named primary groups', () => {
    const entries = parseSysusers('u a 990\ng b 991\nu c -:b\nu d 992:b\n', 'f');
    expect(entries.map((e) => (e.type === 'u' ? [e.name, e.primaryGroup] : [e.type]))).toEqual([
      ['a', undefined],
      ['g'],
      ['c', 'b'],
      ['d', 'b'],
    ]);
    const effects = sysusersEffects(entries);
    // A named primary group is not created with the user.
    expect([...effects.groups].sort()).toEqual(['a', 'b']);
    expect(effects.namedGroups.map((n) => n.name)).toEqual(['b', 'b']);
  });

  it('refuses an m line adding a user the bundle does not create', () => {
    const fragment = 'u demo -\nm www-data postgres-clients\nm demo postgres-clients\n';
    const { manifest } = buildTestBundle({
      files: [
        { path: 'quadlet/demo.container', content: '[Container]\nImage=x\n' },
        { path: 'sysusers.d/demo.conf', content: fragment },
      ],
    });
    expect(() =>
      bundleSysusers(manifest, new Map([['sysusers.d/demo.conf', Buffer.from(fragment)]])),
    ).toThrow(
      'invalid sysusers.d fragment: sysusers.d/demo.conf:2: m www-data postgres-clients adds a user the bundle does not create with a u line',
    );
  });
});
