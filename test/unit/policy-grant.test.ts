/**
 * Grants and needs, pure: the grant file's format, what a grant covers, and
 * the judge's reading of values (ports, user specs, specifiers).
 */
import { describe, expect, it } from 'vitest';
import { covers, emptyNeeds, type Needs, uncovered } from '../../src/bundle/needs.js';
import { grantLines, parseGrant } from '../../src/host/policy/grant.js';
import { expandValue, isSensitivePath, publishedPort } from '../../src/host/policy/restricted.js';

const granted = (partial: Partial<Needs>): Needs => ({ ...emptyNeeds(), ...partial });

describe('parseGrant', () => {
  it('reads list keys that repeat and add up, quotes and comments', () => {
    const g = parseGrant(
      '# grant\nGROUPS=b a\nGROUPS="c,a"\nPATHS=/srv:rw # trailing\nPROFILE=restricted\n',
      'x.conf',
    );
    expect(g.profile).toBe('restricted');
    expect(g.needs.groups).toEqual(['a', 'b', 'c']);
    expect(g.needs.paths).toEqual(['/srv:rw']);
    expect(g.needs.privileged).toBe(false);
  });
  it('PROFILE=privileged grants everything', () => {
    const g = parseGrant('PROFILE=privileged\n', 'x.conf');
    expect(covers(g.needs, { kind: 'privileged' })).toBe(true);
    expect(covers(g.needs, { kind: 'paths', value: '/:rw' })).toBe(true);
  });
  it('refuses a PROFILE set twice and a line that is not KEY=value', () => {
    expect(() =>
      parseGrant('PROFILE=restricted\nPROFILE=privileged\nnonsense\n', 'x.conf'),
    ).toThrow('x.conf: line 2: PROFILE is set twice; line 3: expected KEY=value');
  });
  it('writes sorted lines that read back as the same grant', () => {
    const lines = grantLines([
      { kind: 'paths', value: '/b:ro' },
      { kind: 'paths', value: '/a:rw' },
      { kind: 'groups', value: 'g' },
    ]);
    expect(lines).toEqual(['GROUPS=g', 'PATHS=/a:rw /b:ro']);
    expect(parseGrant(`${lines.join('\n')}\n`, 'x').needs.paths).toEqual(['/a:rw', '/b:ro']);
  });
  it('names no need that another one it grants covers', () => {
    const lines = grantLines([
      { kind: 'groups', value: 'postgres-clients' },
      { kind: 'paths', value: '/var/lib/authentik/data:rw' },
      { kind: 'paths', value: '/var/lib/authentik/logs/server.log:rw' },
      { kind: 'paths', value: '/var/lib/authentik:rw' },
      { kind: 'paths', value: '/var/lib/authentik-media:ro' },
      { kind: 'paths', value: '/var/run/valkey:ro' },
      { kind: 'paths', value: '/var/run/valkey:rw' },
      { kind: 'ports', value: '0.0.0.0:443/tcp' },
      { kind: 'ports', value: '*:443/tcp' },
    ]);
    expect(lines).toEqual([
      'GROUPS=postgres-clients',
      'PATHS=/var/lib/authentik-media:ro /var/lib/authentik:rw /var/run/valkey:rw',
      'PORTS=*:443/tcp',
    ]);
    expect(grantLines([{ kind: 'privileged' }, { kind: 'paths', value: '/:rw' }])).toEqual([
      'PROFILE=privileged',
    ]);
  });
});

describe('what a grant covers', () => {
  it('a directory covers what lies below it; rw covers ro, not the other way', () => {
    const g = granted({ paths: ['/var/lib/app:rw', '/srv:ro'] });
    expect(covers(g, { kind: 'paths', value: '/var/lib/app/logs:rw' })).toBe(true);
    expect(covers(g, { kind: 'paths', value: '/var/lib/application:ro' })).toBe(false);
    expect(covers(g, { kind: 'paths', value: '/srv/x:ro' })).toBe(true);
    expect(covers(g, { kind: 'paths', value: '/srv/x:rw' })).toBe(false);
  });
  it('a sensitive path needs a grant naming it exactly', () => {
    const g = granted({ paths: ['/run:rw', '/:ro'] });
    expect(covers(g, { kind: 'paths', value: '/run/podman/podman.sock:rw' })).toBe(false);
    expect(covers(g, { kind: 'paths', value: '/etc:ro' })).toBe(false);
    expect(covers(granted({ paths: ['/etc:ro'] }), { kind: 'paths', value: '/etc:ro' })).toBe(true);
  });
  it('ports: an address or *, a range or *', () => {
    const g = granted({ ports: ['0.0.0.0:8000-8010/tcp', '*:53/udp'] });
    expect(covers(g, { kind: 'ports', value: '0.0.0.0:8005/tcp' })).toBe(true);
    expect(covers(g, { kind: 'ports', value: '0.0.0.0:8011/tcp' })).toBe(false);
    expect(covers(g, { kind: 'ports', value: '[::]:53/udp' })).toBe(true);
    expect(covers(g, { kind: 'ports', value: '*:8005/tcp' })).toBe(false);
  });
  it('capabilities: ALL covers each one', () => {
    expect(
      covers(granted({ capabilities: ['ALL'] }), { kind: 'capabilities', value: 'SYS_ADMIN' }),
    ).toBe(true);
  });
  it('uncovered lists each missing need once, in order', () => {
    expect(
      uncovered(granted({ groups: ['a'] }), [
        { kind: 'groups', value: 'b' },
        { kind: 'groups', value: 'a' },
        { kind: 'groups', value: 'b' },
        { kind: 'privileged' },
      ]),
    ).toEqual([{ kind: 'groups', value: 'b' }, { kind: 'privileged' }]);
  });
});

describe('values as the judge reads them', () => {
  it.each([
    ['80', '*:*/tcp'],
    ['8080:80', '*:8080/tcp'],
    ['127.0.0.1:9000:9000', '127.0.0.1:9000/tcp'],
    ['0.0.0.0::80/udp', '0.0.0.0:*/udp'],
    ['[::1]:9000:9000', '[::1]:9000/tcp'],
    ['[::]:8000-8010:8000-8010', '[::]:8000-8010/tcp'],
  ])('PublishPort=%s is %s', (value, need) => {
    expect(publishedPort(value)).toBe(need);
  });
  it('resolves the specifiers of a system unit and refuses what it cannot tell', () => {
    expect(expandValue('%E/ssl:%t/x:%h:%%:$$', 'app')).toBe('/etc/ssl:/run/x:/root:%:$');
    expect(expandValue('/var/lib/%N', 'app')).toBe('/var/lib/app');
    expect(expandValue('%H', 'app')).toBeUndefined();
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the text ${HOME} as a unit file holds it, for systemd to expand
    expect(expandValue('${HOME}', 'app')).toBeUndefined();
  });
  it('sensitive paths: the listed roots, and anything above or below an engine socket', () => {
    expect(isSensitivePath('/etc')).toBe(true);
    expect(isSensitivePath('/etc/ssl')).toBe(false);
    expect(isSensitivePath('/run')).toBe(true);
    expect(isSensitivePath('/run/podman/podman.sock')).toBe(true);
    expect(isSensitivePath('/var/lib/containers/storage')).toBe(true);
    expect(isSensitivePath('/var/run/postgresql')).toBe(false);
  });
});
