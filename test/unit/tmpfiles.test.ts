import { describe, expect, it } from 'vitest';
import { parseTmpfiles } from '../../src/bundle/tmpfiles.js';
import { isRickError } from '../../src/errors.js';

function refusalOf(text: string): string {
  try {
    parseTmpfiles(text, 'tmpfiles.d/x.conf', 'authentik');
  } catch (error) {
    if (isRickError(error) && error.code === 'BUNDLE_INVALID') return error.message;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('tmpfiles.d policy', () => {
  it("accepts a service's own state directories", () => {
    const text = [
      '# authentik',
      'd /var/lib/authentik 0750 authentik authentik -',
      'd /var/lib/authentik/media 2750 authentik authentik -',
      'd /var/lib/authentik-media 0750 authentik authentik -',
      'd- /run/authentik 0755 authentik authentik -',
      'f /var/log/authentik/server.log 0640 authentik authentik',
      'z /srv/authentik 0750 authentik postgres-clients',
      '',
    ].join('\n');
    expect(parseTmpfiles(text, 'x', 'authentik').map((e) => [e.type, e.path])).toEqual([
      ['d', '/var/lib/authentik'],
      ['d', '/var/lib/authentik/media'],
      ['d', '/var/lib/authentik-media'],
      ['d-', '/run/authentik'],
      ['f', '/var/log/authentik/server.log'],
      ['z', '/srv/authentik'],
    ]);
  });

  it('refuses links, writes, removals, copies and recursive changes', () => {
    const message = refusalOf(
      [
        'L+ /var/lib/authentik/x - - - - /etc/shadow',
        'w /proc/sys/kernel/core_pattern - - - - |/tmp/x',
        'R /var/lib/authentik',
        'C /var/lib/authentik/x - - - - /etc',
        'Z /var/lib/authentik 0777 nobody nobody',
        'c /var/lib/authentik/mem 0666 - - - 1:1',
      ].join('\n'),
    );
    for (const t of ['L+', 'w', 'R', 'C', 'Z', 'c']) {
      expect(message).toContain(`line type ${JSON.stringify(t)} is not allowed (only d, e, f, z)`);
    }
  });

  it("refuses paths outside the bundle's own state, in rick or systemd state, or non-canonical", () => {
    const message = refusalOf(
      [
        'd /etc/cron.d 0755 root root',
        'd /var/lib 0777 - -',
        'z /run/postgresql 0777 - -',
        'd /var/lib/authentikx 0755 - -',
        'd /var/lib/rick/current 0755 - -',
        'd /run/systemd/system 0755 - -',
        'd /var/lib/authentik/../../../etc 0755 - -',
        'd var/lib/authentik 0755 - -',
        'd /var/lib/%u 0755 - -',
      ].join('\n'),
    );
    const own =
      "is outside the bundle's own state (/var/lib/authentik, /var/cache/authentik, /var/log/authentik, /srv/authentik, /run/authentik)";
    expect(message).toContain(`tmpfiles.d/x.conf:1: path /etc/cron.d ${own}`);
    expect(message).toContain(`tmpfiles.d/x.conf:2: path /var/lib ${own}`);
    expect(message).toContain(`tmpfiles.d/x.conf:3: path /run/postgresql ${own}`);
    expect(message).toContain(`tmpfiles.d/x.conf:4: path /var/lib/authentikx ${own}`);
    expect(message).toContain(
      'tmpfiles.d/x.conf:5: path /var/lib/rick/current lies in /var/lib/rick, which a bundle may not touch',
    );
    expect(message).toContain('tmpfiles.d/x.conf:6: path /run/systemd/system lies in /run/systemd');
    expect(message).toContain(
      'tmpfiles.d/x.conf:7: path "/var/lib/authentik/../../../etc" is not canonical',
    );
    expect(message).toContain('tmpfiles.d/x.conf:8: path "var/lib/authentik" is not absolute');
    expect(message).toContain('tmpfiles.d/x.conf:9: path "/var/lib/%u" uses a specifier');
  });

  it('keeps a bundle named after rick, systemd or podman out of their state', () => {
    expect(() => parseTmpfiles('d /var/lib/rick/x 0755 - -\n', 'f', 'rick')).toThrow(
      /lies in \/var\/lib\/rick, which a bundle may not touch/,
    );
    expect(() =>
      parseTmpfiles('d /var/lib/containers/storage 0755 - -\n', 'f', 'containers'),
    ).toThrow(/lies in \/var\/lib\/containers/);
  });

  it('refuses setuid modes and setgid files', () => {
    const message = refusalOf('d /var/lib/authentik 4755 - -\nf /var/lib/authentik/y 2755 - -\n');
    expect(message).toContain('tmpfiles.d/x.conf:1: mode 4755 sets the setuid bit');
    expect(message).toContain('tmpfiles.d/x.conf:2: mode 2755 sets the setgid bit on a file');
  });
});

describe('tmpfiles.d owners', () => {
  it('refuses numeric owners and malformed names, which would name whoever holds the id', () => {
    const message = refusalOf(
      [
        'd /var/lib/authentik 0750 0 authentik',
        'd /var/lib/authentik/a 0750 authentik 6',
        'd /var/lib/authentik/b 0750 ../x -',
        'd /var/lib/authentik/c 0750 :authentik :authentik',
      ].join('\n'),
    );
    expect(message).toContain(
      'tmpfiles.d/x.conf:1: user 0 is a number, which names whoever holds that id; name the user',
    );
    expect(message).toContain(
      'tmpfiles.d/x.conf:2: group 6 is a number, which names whoever holds that id; name the group',
    );
    expect(message).toContain('tmpfiles.d/x.conf:3: user field: invalid uid name "../x"');
    expect(message).not.toContain('x.conf:4');
  });
});
