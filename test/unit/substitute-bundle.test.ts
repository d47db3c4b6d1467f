import { describe, expect, it } from 'vitest';
import { isRickError, type RickError } from '../../src/errors.js';
import { renderedLocation } from '../../src/host/generations.js';
import {
  GENERATION_MARKER,
  normalizeGenerationPaths,
  substituteBundle,
  substituteBundleNormalized,
} from '../../src/host/substitute.js';
import { buildTestBundle, type FactoryFile, sampleFiles } from '../helpers/bundle-factory.js';

function contentsOf(
  files: FactoryFile[] = sampleFiles(),
  manifestPatch?: (m: Record<string, unknown>) => Record<string, unknown>,
) {
  const { manifest } = buildTestBundle({ files, ...(manifestPatch ? { manifestPatch } : {}) });
  const map = new Map(
    files.map((f) => [f.path, Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content)]),
  );
  return { manifest, files: map };
}

const facts = new Map([
  ['gid:demo', '990'],
  ['uid:demo', '990'],
  ['gid:postgres-clients', '117'],
  ['secret:db_password', 'p@ss/word:1'],
]);

function refusal(fn: () => unknown): RickError {
  try {
    fn();
  } catch (error) {
    if (isRickError(error)) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('substituteBundle', () => {
  it('replaces every token by plain substitution, url-encoding where asked', () => {
    const out = substituteBundle(contentsOf(), facts, 7);
    const unit = out.get('quadlet/demo-app.container')?.toString('utf8') ?? '';
    expect(unit).toContain(
      'EnvironmentFile=/var/lib/rick/generations/7/bundles/demo/env/demo.env\n',
    );
    expect(unit).toContain('User=990:990\n');
    expect(unit).toContain('PodmanArgs=--group-add 117\n');
    expect(unit).not.toContain('@@rick:');
    const env = out.get('env/demo.env')?.toString('utf8');
    expect(env).toBe(
      'MARKER=v1\nDB_PASSWORD=p@ss/word:1\nCACHE_URL=unix:///run/valkey.sock?password=p%40ss%2Fword%3A1\n',
    );
    expect(out.get('quadlet/demo.pod')?.toString('utf8')).toContain('PodName=demo');
  });

  it('leaves installer files untouched even when they contain token syntax', () => {
    const installer = Buffer.from('const t = "@@rick:gid:whatever@@";\n');
    const files = [...sampleFiles(), { path: 'installer/rick-install.cjs', content: installer }];
    const contents = contentsOf(files);
    expect(substituteBundle(contents, facts, 1).get('installer/rick-install.cjs')).toBe(
      contents.files.get('installer/rick-install.cjs'),
    );
  });

  it('does not rescan substituted values (a secret that looks like a token stays a secret)', () => {
    const sneaky = new Map(facts).set('secret:db_password', '@@rick:gid:root@@');
    const env = substituteBundle(contentsOf(), sneaky, 1).get('env/demo.env')?.toString('utf8');
    expect(env).toContain('DB_PASSWORD=@@rick:gid:root@@\n');
  });

  it('names every fact without a value as FACT_MISSING, with file and token', () => {
    const error = refusal(() => substituteBundle(contentsOf(), new Map([['gid:demo', '1']]), 1));
    expect(error.code).toBe('FACT_MISSING');
    expect(error.message).toContain('quadlet/demo-app.container: @@rick:uid:demo@@');
    expect(error.message).toContain('quadlet/demo-app.container: @@rick:gid:postgres-clients@@');
    expect(error.message).toContain('env/demo.env: @@rick:secret:db_password@@');
    expect(error.message).toContain('env/demo.env: @@rick:secret:db_password:url@@');
  });

  it('refuses malformed tokens, undeclared facts and paths outside the bundle as BUNDLE_INVALID', () => {
    const files: FactoryFile[] = [
      {
        path: 'quadlet/x.container',
        content:
          'A=@@rick:host:name@@\nB=@@rick:gid:broken\nC=@@rick:path:env/nope.env@@\nD=@@rick:gid:ghost@@\n',
      },
    ];
    // The manifest declares no fact for `ghost`.
    const contents = contentsOf(files, (m) => ({ ...m, facts: [] }));
    const error = refusal(() => substituteBundle(contents, new Map([['gid:ghost', '5']]), 1));
    expect(error.code).toBe('BUNDLE_INVALID');
    expect(error.message).toContain(
      'quadlet/x.container: malformed token @@rick:host:name@@ (unknown placeholder kind "host")',
    );
    expect(error.message).toContain(
      'quadlet/x.container: malformed token @@rick:gid:broken (unterminated token)',
    );
    expect(error.message).toContain(
      'quadlet/x.container: @@rick:path:env/nope.env@@ names no file of the bundle',
    );
    expect(error.message).toContain(
      "quadlet/x.container: @@rick:gid:ghost@@ is not declared in the manifest's facts",
    );
  });

  describe('bundle_path() of each kind: the file the host writes, or a refusal', () => {
    const extra: FactoryFile[] = [
      {
        path: 'systemd/demo-backup.service',
        content: '[Service]\nType=oneshot\nExecStart=/bin/true\n',
      },
      {
        path: 'caddy/demo.caddy',
        content: 'demo.example.org {\n\treverse_proxy 127.0.0.1:9000\n}\n',
      },
      { path: 'tmpfiles.d/demo.conf', content: 'd /var/lib/demo 0750 demo demo -\n' },
      { path: 'installer/rick-install.cjs', content: '// installer\n' },
    ];
    /** The sample bundle plus every other kind, its container mounting `target`. */
    function mounting(target: string) {
      const files = [...sampleFiles(), ...extra].map((f) =>
        f.path === 'quadlet/demo-app.container'
          ? {
              ...f,
              content: `${f.content}\n[Container]\nVolume=@@rick:path:${target}@@:/mnt/file:ro\n`,
            }
          : f,
      );
      return contentsOf(files);
    }

    it.each([
      ['an env file', 'env/demo.env'],
      ['a sysusers.d fragment', 'sysusers.d/demo.conf'],
      ['a tmpfiles.d fragment', 'tmpfiles.d/demo.conf'],
    ])(
      '%s resolves to generations/<n>/bundles/<bundle>/<path>, where it is written',
      (_, target) => {
        const out = substituteBundle(mounting(target), facts, 7);
        expect(out.get('quadlet/demo-app.container')?.toString('utf8')).toContain(
          `Volume=/var/lib/rick/generations/7/${renderedLocation('demo', target)}:/mnt/file:ro\n`,
        );
        expect(renderedLocation('demo', target)).toBe(`bundles/demo/${target}`);
      },
    );

    it.each([
      ['a Quadlet unit', 'quadlet/demo.pod', 'generations/<n>/quadlet/<bundle>/'],
      ['a plain unit', 'systemd/demo-backup.service', 'generations/<n>/systemd/<bundle>/'],
      ['a Caddy site', 'caddy/demo.caddy', 'generations/<n>/caddy/<bundle>/'],
      [
        'the installer',
        'installer/rick-install.cjs',
        "generations/<n>/installer/ (the generation's, not the bundle's)",
      ],
    ])(
      '%s is refused: the host does not write it where the path resolves',
      (what, target, where) => {
        const error = refusal(() => substituteBundle(mounting(target), facts, 7));
        expect(error.code).toBe('BUNDLE_INVALID');
        expect(error.message).toBe(
          `bad placeholders: quadlet/demo-app.container: @@rick:path:${target}@@ names ${what}, which the host writes to ${where}, not to generations/<n>/bundles/<bundle>/ where the path resolves: bundle_path() takes env, sysusers.d and tmpfiles.d files only`,
        );
      },
    );
  });

  it('refuses a secret in a world-readable quadlet file', () => {
    const files: FactoryFile[] = [
      { path: 'quadlet/x.container', content: 'Environment=P=@@rick:secret:pw@@\n' },
    ];
    const error = refusal(() =>
      substituteBundle(contentsOf(files), new Map([['secret:pw', 'x']]), 1),
    );
    expect(error.code).toBe('BUNDLE_INVALID');
    expect(error.message).toMatch(
      /quadlet\/x\.container: @@rick:secret:pw@@ puts a secret into a quadlet file/,
    );
  });

  it('refuses values carrying control characters (no line injection)', () => {
    const bad = new Map(facts).set('secret:db_password', 'x\nEVIL=1');
    const error = refusal(() => substituteBundle(contentsOf(), bad, 1));
    expect(error.code).toBe('SECRETS_INSECURE');
    expect(error.message).toContain('secret:db_password contains a control character');
    expect(error.message).not.toContain('EVIL');
  });
});

describe('generation path normalisation', () => {
  it('makes renderings for two generations equal, and only the generation number is masked', () => {
    const a =
      substituteBundle(contentsOf(), facts, 7)
        .get('quadlet/demo-app.container')
        ?.toString('utf8') ?? '';
    const b =
      substituteBundle(contentsOf(), facts, 12)
        .get('quadlet/demo-app.container')
        ?.toString('utf8') ?? '';
    expect(a).not.toBe(b);
    expect(normalizeGenerationPaths(a)).toBe(normalizeGenerationPaths(b));
    expect(normalizeGenerationPaths(a)).toContain(
      `/var/lib/rick/generations/${GENERATION_MARKER}/bundles/demo/env/demo.env`,
    );
    const normalized = substituteBundleNormalized(contentsOf(), facts)
      .get('quadlet/demo-app.container')
      ?.toString('utf8');
    expect(normalized).toBe(normalizeGenerationPaths(a));
    expect(
      normalizeGenerationPaths('/var/lib/rick/generations/3x /var/lib/rick/generationsX/3'),
    ).toBe(`/var/lib/rick/generations/${GENERATION_MARKER}x /var/lib/rick/generationsX/3`);
  });

  it('masks the generation in a url-encoded path token the same way on both sides', () => {
    const files: FactoryFile[] = [
      {
        path: 'quadlet/x.container',
        content: 'Environment=CONF=file://@@rick:path:env/x.env:url@@\n',
      },
      { path: 'env/x.env', content: 'A=1\n', mode: 0o600 },
    ];
    const contents = contentsOf(files);
    const render = (g: number) =>
      substituteBundle(contents, new Map(), g).get('quadlet/x.container')?.toString('utf8') ?? '';
    expect(render(3)).toContain(
      'file://%2Fvar%2Flib%2Frick%2Fgenerations%2F3%2Fbundles%2Fdemo%2Fenv%2Fx.env',
    );
    expect(normalizeGenerationPaths(render(3))).toBe(normalizeGenerationPaths(render(41)));
    expect(
      substituteBundleNormalized(contents, new Map()).get('quadlet/x.container')?.toString('utf8'),
    ).toBe(normalizeGenerationPaths(render(3)));
  });

  it('still tells a real change apart', () => {
    const other = new Map(facts).set('gid:postgres-clients', '118');
    const a =
      substituteBundle(contentsOf(), facts, 7)
        .get('quadlet/demo-app.container')
        ?.toString('utf8') ?? '';
    const b =
      substituteBundle(contentsOf(), other, 8)
        .get('quadlet/demo-app.container')
        ?.toString('utf8') ?? '';
    expect(normalizeGenerationPaths(a)).not.toBe(normalizeGenerationPaths(b));
  });
});
