import { describe, expect, it } from 'vitest';
import {
  checkVersion,
  fillSampleFacts,
  type PlanInput,
  planBundle,
  REQUIRED_PODMAN,
} from '../../src/build/plan.js';
import { manifestSchema } from '../../src/bundle/manifest.js';

function input(overrides: Partial<PlanInput> = {}): PlanInput {
  return {
    name: 'demo',
    version: '1.0.0',
    epoch: 1_700_000_000,
    commit: 'abcdef1',
    installer: Buffer.from('installer'),
    needs: { groups: ['pg'] },
    services: [
      {
        unit: 'demo.container',
        checks: [{ type: 'http', url: 'http://127.0.0.1:8080/health', timeoutSec: 30 }],
      },
    ],
    files: [
      {
        kind: 'quadlet',
        template: 'quadlet/demo.container.j2',
        name: 'demo.container',
        content:
          '[Container]\nImage=x\nUser=@@rick:uid:demo@@\nPodmanArgs=--group-add @@rick:gid:pg@@ --group-add @@rick:gid:pg@@\nEnvironmentFile=@@rick:path:env/demo.env@@\n',
      },
      {
        kind: 'env',
        template: 'env/demo.env.j2',
        name: 'demo.env',
        content: 'PW=@@rick:secret:pw@@\nURL=x?p=@@rick:secret:pw:url@@\n',
      },
      {
        kind: 'sysusers',
        template: 'sysusers.d/demo.conf',
        name: 'demo.conf',
        content: 'u demo -\n',
      },
    ],
    ...overrides,
  };
}

describe('planBundle', () => {
  it('records every file with its kind and mode, the facts once each, sorted', () => {
    const plan = planBundle(input());
    expect(plan.fileName).toBe('demo-1.0.0.tgz');
    expect(plan.manifest.requires.podman).toBe(REQUIRED_PODMAN);
    expect(plan.manifest.createdAt).toBe('2023-11-14T22:13:20.000Z');
    expect(plan.manifest.files.map((f) => [f.path, f.kind, f.mode])).toEqual([
      ['env/demo.env', 'env', 0o600],
      ['installer/rick-install.cjs', 'installer', 0o755],
      ['quadlet/demo.container', 'quadlet', 0o644],
      ['sysusers.d/demo.conf', 'sysusers', 0o644],
    ]);
    expect(plan.manifest.facts).toEqual([
      { kind: 'gid', name: 'pg' },
      { kind: 'secret', name: 'pw' },
      { kind: 'uid', name: 'demo' },
    ]);
    expect(plan.manifest.services).toEqual([
      {
        unit: 'demo.container',
        service: 'demo.service',
        activeTimeoutSec: 120,
        checks: [
          { type: 'http', url: 'http://127.0.0.1:8080/health', timeoutSec: 30, intervalSec: 2 },
        ],
      },
    ]);
    expect(plan.entries[0]?.path).toBe('manifest.json');
    // No databases declared: `needs.databases` is left out, so that installers
    // that predate databases read the manifest as before.
    const written = JSON.parse(plan.entries[0]?.data.toString() ?? '');
    expect(written.needs).not.toHaveProperty('databases');
    expect(manifestSchema.parse(written)).toEqual(plan.manifest);
    expect(plan.units.map((u) => u.name)).toEqual(['demo.container']);
  });

  it('refuses services whose gate timeouts add up past the activation limit, naming each part and the sum', () => {
    const files = [
      ...input().files,
      {
        kind: 'quadlet' as const,
        template: 'quadlet/w.container',
        name: 'w.container',
        content: '[Container]\nImage=x\n',
      },
    ];
    const services = [
      {
        unit: 'demo.container',
        activeTimeoutSec: 600,
        checks: [{ type: 'http' as const, url: 'http://127.0.0.1:8080/health', timeoutSec: 300 }],
      },
      { unit: 'w.container', activeTimeoutSec: 600, settleSec: 10 },
    ];
    expect(() => planBundle(input({ files, services }))).toThrow(
      "the services' gate timeouts add up to 1515s, past the activation limit of 1500s: demo.service 905s + w.service 610s",
    );
    // settleSec is written only when declared: a bundle without it reads as before.
    const fits = planBundle(input({ files, services: [services[1]!] }));
    expect(fits.manifest.services).toEqual([
      {
        unit: 'w.container',
        service: 'w.service',
        activeTimeoutSec: 600,
        settleSec: 10,
        checks: [],
      },
    ]);
    expect(planBundle(input()).manifest.services[0]).not.toHaveProperty('settleSec');
  });

  it('does not scan the installer, whose code mentions the token syntax', () => {
    const plan = planBundle(input({ installer: Buffer.from("const t = '@@rick:bogus:x@@';") }));
    expect(plan.manifest.facts).toHaveLength(3);
  });

  it('refuses unknown kinds and malformed tokens, naming each file', () => {
    const files = input().files.map((f) =>
      f.kind === 'env' ? { ...f, content: 'A=@@rick:host:name@@\nB=@@rick:gid:x' } : f,
    );
    expect(() => planBundle(input({ files }))).toThrow(
      'unknown placeholder: env/demo.env.j2: @@rick:host:name@@ (unknown placeholder kind "host"), @@rick:gid:x (unterminated token)',
    );
  });

  it('refuses host facts in sysusers and tmpfiles fragments', () => {
    const files = [
      ...input().files,
      {
        kind: 'tmpfiles' as const,
        template: 'tmpfiles.d/demo.conf.j2',
        name: 'demo.conf',
        content: 'd /srv/demo 0750 @@rick:uid:demo@@ - -\n',
      },
    ];
    expect(() => planBundle(input({ files }))).toThrow(
      /tmpfiles\.d\/demo\.conf\.j2: tmpfiles fragments cannot use host facts or paths \(uid:demo\)/,
    );
  });

  it('refuses bundle_path() to a file the bundle does not ship', () => {
    const files = input().files.filter((f) => f.kind !== 'env');
    expect(() => planBundle(input({ files }))).toThrow(
      /quadlet\/demo\.container\.j2: bundle_path\("env\/demo\.env"\) is not a file of the bundle/,
    );
  });

  it.each([
    ['a Quadlet unit', 'quadlet/demo.container', 'generations/<n>/quadlet/<bundle>/'],
    ['a plain unit', 'systemd/demo-backup.service', 'generations/<n>/systemd/<bundle>/'],
    ['a Caddy site', 'caddy/demo.caddy', 'generations/<n>/caddy/<bundle>/'],
    [
      'the installer',
      'installer/rick-install.cjs',
      "generations/<n>/installer/ (the generation's, not the bundle's)",
    ],
  ])(
    'refuses bundle_path() of %s, which the host does not write where the path resolves',
    (what, target, where) => {
      const files = [
        ...input().files.map((f) =>
          f.kind === 'quadlet'
            ? { ...f, content: `${f.content}Volume=@@rick:path:${target}@@:/mnt/file:ro\n` }
            : f,
        ),
        {
          kind: 'systemd' as const,
          template: 'systemd/demo-backup.service.j2',
          name: 'demo-backup.service',
          content: '[Service]\nType=oneshot\nExecStart=/bin/true\n',
        },
        {
          kind: 'caddy' as const,
          template: 'caddy/demo.caddy.j2',
          name: 'demo.caddy',
          content: 'demo.example.org {\n\treverse_proxy 127.0.0.1:9000\n}\n',
        },
      ];
      expect(() => planBundle(input({ files }))).toThrow(
        `quadlet/demo.container.j2: bundle_path("${target}") names ${what}, which the host writes to ${where}, not to generations/<n>/bundles/<bundle>/ where the path resolves: bundle_path() takes env, sysusers.d and tmpfiles.d files only`,
      );
    },
  );

  it('takes bundle_path() of an env, sysusers.d or tmpfiles.d file', () => {
    const files = input().files.map((f) =>
      f.kind === 'quadlet'
        ? {
            ...f,
            content: `${f.content}Volume=@@rick:path:sysusers.d/demo.conf@@:/mnt/a:ro\nVolume=@@rick:path:tmpfiles.d/demo.conf@@:/mnt/b:ro\n`,
          }
        : f,
    );
    files.push({
      kind: 'tmpfiles',
      template: 'tmpfiles.d/demo.conf.j2',
      name: 'demo.conf',
      content: 'd /var/lib/demo 0750 demo demo -\n',
    });
    const plan = planBundle(input({ files }));
    expect(plan.manifest.files.map((f) => f.path)).toContain('tmpfiles.d/demo.conf');
  });

  it('refuses env lines that are not NAME=value, naming the rendered line', () => {
    const files = input().files.map((f) =>
      f.kind === 'env' ? { ...f, content: '# ok\n\nA=1\nHOME\n  B = 2\n' } : f,
    );
    expect(() => planBundle(input({ files }))).toThrow(
      'env/demo.env.j2: rendered line 4 is not NAME=value: "HOME"; env/demo.env.j2: rendered line 5 is not NAME=value: "  B = 2"',
    );
  });

  it('refuses a health check that is not on loopback', () => {
    const services = [
      {
        unit: 'demo.container',
        checks: [{ type: 'http' as const, url: 'http://10.0.0.1/', timeoutSec: 5 }],
      },
    ];
    expect(() => planBundle(input({ services }))).toThrow(
      /services\.0\.checks\.0\.url: must be an http/,
    );
  });
});

describe('checkVersion', () => {
  it('accepts semantic versions exactly as written and nothing else', () => {
    for (const ok of ['1.0.0', '0.0.1', '2.0.0-rc.1']) {
      expect(() => checkVersion(ok)).not.toThrow();
    }
    // Build metadata is refused too: it does not order versions, so the host could not tell them apart.
    for (const bad of ['v1.0.0', '1.0', '', ' 1.0.0', '1.0.0.0', '01.0.0', '1.2.3+build.5']) {
      expect(() => checkVersion(bad)).toThrow(/is not a semantic version/);
    }
  });
});

describe('fillSampleFacts', () => {
  it('fills every kind with a value of the right shape for quadlet', () => {
    expect(
      fillSampleFacts(
        'User=@@rick:uid:a@@:@@rick:gid:a@@ E=@@rick:path:env/a.env@@ S=@@rick:secret:s:url@@',
        'demo',
      ),
    ).toBe('User=4242:4242 E=/var/lib/rick/generations/1/bundles/demo/env/a.env S=sample-secret');
  });
});

describe('planBundle: declared databases', () => {
  const db = { postgresql: 'demo_db', owner: 'demo', password: 'pw' };

  it('records each database in the manifest, and its need for the grant', () => {
    const plan = planBundle(input({ needs: { groups: ['pg'], databases: [db] } }));
    expect(plan.manifest.databases).toEqual([db]);
    expect(plan.manifest.needs?.databases).toEqual(['postgresql:demo_db']);
    const written = JSON.parse(plan.entries[0]?.data.toString() ?? '');
    expect(written.databases).toEqual([db]);
    expect(written.needs.databases).toEqual(['postgresql:demo_db']);
    // A database is the installer's business: no "no unit uses it" warning.
    expect(plan.needs.unused).toEqual([]);
  });

  it('refuses a password that is not a secret the templates use', () => {
    expect(() =>
      planBundle(input({ needs: { databases: [{ ...db, password: 'unused_pw' }] } })),
    ).toThrow(/password unused_pw is not a secret the bundle's templates use/);
  });

  it('refuses names that would need quoting, and PostgreSQL own names', () => {
    for (const [field, value, message] of [
      ['postgresql', 'demo"; DROP ROLE x; --', 'must be lowercase letters, digits and _'],
      ['postgresql', 'Demo', 'must be lowercase letters, digits and _'],
      ['owner', 'postgres', "is PostgreSQL's own"],
      ['owner', 'pg_read_all_data', "is PostgreSQL's own"],
      ['owner', 'x'.repeat(64), 'at most 63 characters'],
    ] as const) {
      expect(() =>
        planBundle(input({ needs: { databases: [{ ...db, [field]: value }] } })),
      ).toThrow(message);
    }
  });
});
