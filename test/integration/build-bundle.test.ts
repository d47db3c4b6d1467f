import { execFileSync } from 'node:child_process';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseBundleArchive } from '../../src/bundle/archive.js';
import { BUILD_RECORD_PATH } from '../../src/bundle/build-record.js';
import { manifestSchema } from '../../src/bundle/manifest.js';
import { quadletPath, repoRoot, requireQuadletUnderCi } from '../helpers/quadlet.js';
import {
  copyAuthentik,
  makeTempDir,
  runBundleCli,
  writeBundleDir,
  writeTestInstaller,
} from '../helpers/rick-bundle.js';

requireQuadletUnderCi();

const env = { PATH: process.env.PATH, SOURCE_DATE_EPOCH: '1700000000' };
let work: string;
let out: string;
let installer: string;

beforeEach(async () => {
  work = await makeTempDir('rick-build-');
  out = join(work, 'out');
  installer = await writeTestInstaller(work);
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function build(bundleDir: string, ...extra: string[]) {
  return runBundleCli(
    ['build', bundleDir, '--version', '1.2.3', '--out', out, '--installer', installer, ...extra],
    { env },
  );
}

async function outputFiles(): Promise<string[]> {
  try {
    return await readdir(out);
  } catch {
    return [];
  }
}

function minimalBundle(unit: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'bundle.yaml':
      'name: demo\nneeds: { users: [root] }\nvariables:\n  image: docker.io/library/demo\nfiles:\n  quadlet: [quadlet/demo.container.j2]\n',
    'quadlet/demo.container.j2': unit,
    ...extra,
  };
}

const goodUnit = '[Container]\nImage={{ image }}:1\n\n[Install]\nWantedBy=multi-user.target\n';

describe.skipIf(!quadletPath)('rick-bundle build: the authentik bundle', () => {
  it('builds a bundle whose manifest records every host fact, file, mode and service', async () => {
    const result = await build(join(repoRoot, 'bundles/authentik'), '--source-commit', 'abc1234');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/built .*authentik-1\.2\.3\.tgz/);
    const tgz = await readFile(join(out, 'authentik-1.2.3.tgz'));
    const { manifest, files } = parseBundleArchive(tgz);
    expect(manifestSchema.safeParse(manifest).success).toBe(true);
    expect(manifest.createdAt).toBe('2023-11-14T22:13:20.000Z');
    expect(manifest.source.commit).toBe('abc1234');
    // The toolchain that built it, as a rebuild from the tag needs it, in the
    // build record the manifest lists, not in the manifest hosts validate.
    const version = async (file: string) =>
      (JSON.parse(await readFile(join(repoRoot, file), 'utf8')) as { version: string }).version;
    expect(manifest).not.toHaveProperty('toolchain');
    expect(JSON.parse(files.get(BUILD_RECORD_PATH)?.toString('utf8') ?? '{}')).toEqual({
      schemaVersion: 1,
      toolchain: {
        node: process.versions.node,
        rick: await version('package.json'),
        esbuild: await version('node_modules/esbuild/package.json'),
      },
    });
    expect(manifest.requires.podman).toBe('5.3.0');
    expect(manifest.files.map((f) => [f.path, f.kind, f.mode.toString(8)])).toEqual([
      ['caddy/authentik.caddy', 'caddy', '644'],
      ['env/authentik.env', 'env', '600'],
      ['installer/build-record.json', 'installer', '644'],
      ['installer/rick-install.cjs', 'installer', '755'],
      ['quadlet/authentik-server.container', 'quadlet', '644'],
      ['quadlet/authentik-worker.container', 'quadlet', '644'],
      ['quadlet/authentik.pod', 'quadlet', '644'],
      ['sysusers.d/authentik.conf', 'sysusers', '644'],
      ['tmpfiles.d/authentik.conf', 'tmpfiles', '644'],
    ]);
    expect(manifest.facts).toEqual([
      { kind: 'gid', name: 'authentik' },
      { kind: 'gid', name: 'postgres-clients' },
      { kind: 'gid', name: 'valkey-clients' },
      { kind: 'secret', name: 'authentik_db_password' },
      { kind: 'secret', name: 'authentik_secret_key' },
      { kind: 'secret', name: 'authentik_valkey_password' },
      { kind: 'uid', name: 'authentik' },
    ]);
    expect(manifest.services.map((s) => [s.unit, s.service])).toEqual([
      ['authentik.pod', 'authentik-pod.service'],
      ['authentik-server.container', 'authentik-server.service'],
      ['authentik-worker.container', 'authentik-worker.service'],
    ]);
    expect(manifest.services[1]?.checks).toEqual([
      {
        type: 'http',
        url: 'http://127.0.0.1:9000/-/health/live/',
        timeoutSec: 300,
        intervalSec: 5,
      },
    ]);

    const server = files.get('quadlet/authentik-server.container')?.toString('utf8') ?? '';
    expect(server).toContain('EnvironmentFile=@@rick:path:env/authentik.env@@\n');
    expect(server).toContain('User=@@rick:uid:authentik@@:@@rick:gid:authentik@@\n');
    expect(server).toContain(
      'PodmanArgs=--group-add @@rick:gid:postgres-clients@@ --group-add @@rick:gid:valkey-clients@@\n',
    );
    expect(server).toContain('Image=ghcr.io/goauthentik/server:2025.10.2\n');
    expect(server).toContain('Exec=server\n');
    const pod = files.get('quadlet/authentik.pod')?.toString('utf8') ?? '';
    expect(pod).toContain('PublishPort=127.0.0.1:9000:9000\n');
    expect(pod).toContain('ShmSize=256m\n');
    const envFile = files.get('env/authentik.env')?.toString('utf8') ?? '';
    expect(envFile).toContain(
      'AUTHENTIK_CACHE__URL=unix:///var/run/valkey/valkey.sock?db=1&password=@@rick:secret:authentik_valkey_password:url@@\n',
    );
    expect(envFile).not.toContain('AUTHENTIK_EMAIL__');
    const sysusers = files.get('sysusers.d/authentik.conf')?.toString('utf8') ?? '';
    expect(sysusers).toMatch(/^u authentik - "Authentik" \/var\/lib\/authentik /m);
    expect(sysusers).toMatch(/^m authentik postgres-clients$/m);
    expect(sysusers).toMatch(/^m authentik valkey-clients$/m);
  });

  it('builds byte-identical tarballs from the same inputs', async () => {
    const dir = join(repoRoot, 'bundles/authentik');
    expect((await build(dir, '--source-commit', 'abc1234')).code).toBe(0);
    const first = await readFile(join(out, 'authentik-1.2.3.tgz'));
    await rm(out, { recursive: true });
    expect((await build(dir, '--source-commit', 'abc1234')).code).toBe(0);
    const second = await readFile(join(out, 'authentik-1.2.3.tgz'));
    expect(second.equals(first)).toBe(true);
    // gzip header: no timestamp.
    expect(first.readUInt32LE(4)).toBe(0);
    // every tar entry carries SOURCE_DATE_EPOCH as its mtime
    const tar = gunzipSync(first);
    expect(Number.parseInt(tar.subarray(136, 148).toString('latin1'), 8)).toBe(1_700_000_000);
  });

  it('builds the same bytes from copies in different directories', async () => {
    const one = await copyAuthentik(join(work, 'one/checkout'));
    const two = await copyAuthentik(join(work, 'two/elsewhere/deeper'));
    const args = ['--version', '1.2.3', '--installer', installer, '--source-commit', 'abc1234'];
    expect(
      (await runBundleCli(['build', one, '--out', join(work, 'o1'), ...args], { env })).code,
    ).toBe(0);
    expect(
      (await runBundleCli(['build', two, '--out', join(work, 'o2'), ...args], { env })).code,
    ).toBe(0);
    const a = await readFile(join(work, 'o1/authentik-1.2.3.tgz'));
    const b = await readFile(join(work, 'o2/authentik-1.2.3.tgz'));
    expect(a.equals(b)).toBe(true);
  });

  it('renders the same files for another version, so a release restarts only what changed', async () => {
    const dir = join(repoRoot, 'bundles/authentik');
    const base = ['--installer', installer, '--source-commit', 'abc1234'];
    await runBundleCli(['build', dir, '--version', '1.0.0', '--out', out, ...base], { env });
    await runBundleCli(['build', dir, '--version', '1.1.0', '--out', out, ...base], { env });
    const a = parseBundleArchive(await readFile(join(out, 'authentik-1.0.0.tgz')));
    const b = parseBundleArchive(await readFile(join(out, 'authentik-1.1.0.tgz')));
    expect(b.manifest.version).toBe('1.1.0');
    expect([...b.files.keys()]).toEqual([...a.files.keys()]);
    for (const [path, data] of a.files) {
      expect(b.files.get(path)?.equals(data), path).toBe(true);
    }
  });

  it('applies --vars files over the defaults, later files winning', async () => {
    const a = join(work, 'a.yaml');
    const b = join(work, 'b.yaml');
    await writeFile(a, 'authentik_bind_address: 0.0.0.0\nauthentik_email_host: smtp.example.org\n');
    await writeFile(
      b,
      'authentik_email_host: mail.example.org\nauthentik_image: registry.example.org/authentik\n',
    );
    const result = await build(join(repoRoot, 'bundles/authentik'), '--vars', a, '--vars', b);
    expect(result.code).toBe(0);
    const { files, manifest } = parseBundleArchive(
      await readFile(join(out, 'authentik-1.2.3.tgz')),
    );
    expect(files.get('quadlet/authentik.pod')?.toString()).toContain(
      'PublishPort=0.0.0.0:9000:9000',
    );
    // The worker's image follows the server's unless set on its own.
    for (const role of ['server', 'worker']) {
      expect(files.get(`quadlet/authentik-${role}.container`)?.toString()).toContain(
        'Image=registry.example.org/authentik:2025.10.2\n',
      );
    }
    const envFile = files.get('env/authentik.env')?.toString() ?? '';
    expect(envFile).toContain('AUTHENTIK_EMAIL__HOST=mail.example.org\n');
    expect(envFile).toContain(
      'AUTHENTIK_EMAIL__PASSWORD=@@rick:secret:authentik_email_password@@\n',
    );
    expect(envFile).toContain('AUTHENTIK_EMAIL__USE_TLS=true\n');
    expect(manifest.facts).toContainEqual({ kind: 'secret', name: 'authentik_email_password' });
  });
});

describe.skipIf(!quadletPath)('rick-bundle build: time and source commit', () => {
  it('takes createdAt from the source commit when SOURCE_DATE_EPOCH is unset', async () => {
    const repo = join(work, 'repo');
    await writeBundleDir(join(repo, 'bundles/demo'), minimalBundle(goodUnit));
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: repo,
        env: {
          ...process.env,
          GIT_AUTHOR_DATE: '2024-03-01T12:00:00Z',
          GIT_COMMITTER_DATE: '2024-03-01T12:00:00Z',
        },
      })
        .toString()
        .trim();
    git('init', '-q');
    git('add', '.');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.org', 'commit', '-q', '-m', 'x');
    const head = git('rev-parse', 'HEAD');
    const result = await runBundleCli(
      [
        'build',
        join(repo, 'bundles/demo'),
        '--version',
        '1.0.0',
        '--out',
        out,
        '--installer',
        installer,
      ],
      { env: { PATH: process.env.PATH } },
    );
    expect(result.code).toBe(0);
    const { manifest } = parseBundleArchive(await readFile(join(out, 'demo-1.0.0.tgz')));
    expect(manifest.createdAt).toBe('2024-03-01T12:00:00.000Z');
    expect(manifest.source.commit).toBe(head);
  });

  it('falls back to 1970-01-01 with a warning outside git without SOURCE_DATE_EPOCH', async () => {
    const dir = await writeBundleDir(join(work, 'demo'), minimalBundle(goodUnit));
    const result = await runBundleCli(
      ['build', dir, '--version', '1.0.0', '--out', out, '--installer', installer],
      { env: { PATH: process.env.PATH, GIT_CEILING_DIRECTORIES: work } },
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('createdAt is 1970-01-01T00:00:00Z');
    const { manifest } = parseBundleArchive(await readFile(join(out, 'demo-1.0.0.tgz')));
    expect(manifest.createdAt).toBe('1970-01-01T00:00:00.000Z');
    expect(manifest.source.commit).toBeNull();
  });

  // git's own refusal of a checkout owned by another user: a container
  // running as root over the runner's workspace. Making that checkout takes root.
  it.skipIf(process.getuid?.() !== 0)(
    'refuses a given commit whose time git cannot read (a checkout git refuses), and writes nothing',
    async () => {
      const repo = join(work, 'repo');
      await writeBundleDir(join(repo, 'bundles/demo'), minimalBundle(goodUnit));
      execFileSync('git', ['init', '-q'], { cwd: repo });
      execFileSync('chown', ['-R', '65534:65534', repo]);
      const result = await runBundleCli(
        [
          'build',
          join(repo, 'bundles/demo'),
          '--version',
          '1.0.0',
          '--out',
          out,
          '--installer',
          installer,
          '--source-commit',
          'b'.repeat(40),
        ],
        { env: { PATH: process.env.PATH, HOME: work } },
      );
      expect(result.stderr).toContain(
        `error PREREQUISITE_MISSING: cannot read the time of source commit ${'b'.repeat(40)} with git in ${join(repo, 'bundles/demo')}: fatal: detected dubious ownership`,
      );
      expect(result.stderr).toContain('set SOURCE_DATE_EPOCH to the commit time');
      expect(result.code).toBe(5);
      expect(await outputFiles()).toEqual([]);
    },
  );

  it('refuses a GITHUB_SHA that the checkout does not hold, and writes nothing', async () => {
    const dir = await writeBundleDir(join(work, 'demo'), minimalBundle(goodUnit));
    const result = await runBundleCli(
      ['build', dir, '--version', '1.0.0', '--out', out, '--installer', installer],
      {
        env: { PATH: process.env.PATH, GIT_CEILING_DIRECTORIES: work, GITHUB_SHA: 'c'.repeat(40) },
      },
    );
    expect(result.stderr).toMatch(
      new RegExp(
        `error PREREQUISITE_MISSING: cannot read the time of source commit ${'c'.repeat(40)} .*not a git repository`,
      ),
    );
    expect(result.code).toBe(5);
    expect(await outputFiles()).toEqual([]);
  });

  it('prefers GITHUB_SHA to the checkout when no --source-commit is given', async () => {
    const dir = await writeBundleDir(join(work, 'demo'), minimalBundle(goodUnit));
    const sha = 'a'.repeat(40);
    const result = await runBundleCli(
      ['build', dir, '--version', '1.0.0', '--out', out, '--installer', installer],
      { env: { ...env, GITHUB_SHA: sha } },
    );
    expect(result.code).toBe(0);
    const { manifest } = parseBundleArchive(await readFile(join(out, 'demo-1.0.0.tgz')));
    expect(manifest.source.commit).toBe(sha);
  });
});

describe.skipIf(!quadletPath)('rick-bundle build refusals leave no output file', () => {
  async function expectRefused(
    result: { code: number; stderr: string },
    code: number,
    message: RegExp,
  ): Promise<void> {
    expect(result.stderr).toMatch(message);
    expect(result.code).toBe(code);
    expect(await outputFiles()).toEqual([]);
  }

  it('refuses an invalid semantic version', async () => {
    const dir = await writeBundleDir(join(work, 'demo'), minimalBundle(goodUnit));
    for (const version of ['v1.2.3', '1.2', 'latest', '01.2.3']) {
      const result = await runBundleCli(
        ['build', dir, '--version', version, '--out', out, '--installer', installer],
        { env },
      );
      await expectRefused(
        result,
        2,
        new RegExp(
          `error INVALID_VERSION: "${version.replace('.', '\\.')}" is not a semantic version`,
        ),
      );
    }
  });

  it('refuses an undefined variable, naming it with the template file and line', async () => {
    const dir = await writeBundleDir(
      join(work, 'demo'),
      minimalBundle('[Container]\nImage={{ image }}:1\nEnvironment=A={{ missing_port }}\n'),
    );
    await expectRefused(
      await build(dir),
      3,
      /error UNDEFINED_VARIABLE: undefined variable missing_port in quadlet\/demo\.container\.j2 line 3/,
    );
  });

  it('refuses an undefined variable passed through a filter', async () => {
    const dir = await writeBundleDir(
      join(work, 'demo'),
      minimalBundle('[Container]\nImage={{ image }}:1\n\nVolume={{ data_dir | dirname }}:/data\n'),
    );
    await expectRefused(
      await build(dir),
      3,
      /undefined variable data_dir in quadlet\/demo\.container\.j2 line 4/,
    );
  });

  it('refuses an undefined variable inside an included template, naming that file', async () => {
    const dir = await writeBundleDir(
      join(work, 'demo'),
      minimalBundle('[Container]\n{% include "parts/image.j2" %}\n', {
        'parts/image.j2': '# image\n\nImage={{ registry }}/demo:1\n',
      }),
    );
    await expectRefused(
      await build(dir),
      3,
      /undefined variable registry in parts\/image\.j2 line 3/,
    );
  });

  it('refuses a template syntax error with the file and line', async () => {
    const dir = await writeBundleDir(
      join(work, 'demo'),
      minimalBundle('[Container]\nImage={{ image }}:1\n{% if image %}\nExec=x\n'),
    );
    const result = await build(dir);
    await expectRefused(result, 3, /error TEMPLATE_ERROR: quadlet\/demo\.container\.j2 line \d+: /);
    const bad = await writeBundleDir(
      join(work, 'bad'),
      minimalBundle('[Container]\n\nImage={{ image }:1\n'),
    );
    await expectRefused(
      await build(bad),
      3,
      /error TEMPLATE_ERROR: quadlet\/demo\.container\.j2 line 3: /,
    );
  });

  it('refuses a placeholder of an unknown kind, naming the file', async () => {
    const dir = await writeBundleDir(
      join(work, 'demo'),
      minimalBundle('[Container]\nImage={{ image }}:1\nEnvironment=H=@@rick:hostname:x@@\n'),
    );
    await expectRefused(
      await build(dir),
      3,
      /error UNKNOWN_PLACEHOLDER: unknown placeholder: quadlet\/demo\.container\.j2: @@rick:hostname:x@@ \(unknown placeholder kind "hostname"\)/,
    );
  });

  it('refuses an invalid fact name in a template function, with file and line', async () => {
    const dir = await writeBundleDir(
      join(work, 'demo'),
      minimalBundle('[Container]\nImage={{ image }}:1\n\nUser={{ uid("../root") }}\n'),
    );
    await expectRefused(
      await build(dir),
      3,
      /error TEMPLATE_ERROR: quadlet\/demo\.container\.j2 line 4: uid\(\): invalid uid name "\.\.\/root"/,
    );
  });

  it('refuses host facts in sysusers and tmpfiles fragments', async () => {
    const dir = await writeBundleDir(join(work, 'demo'), {
      ...minimalBundle(goodUnit),
      'bundle.yaml':
        'name: demo\nneeds: { users: [root] }\nvariables:\n  image: docker.io/library/demo\nfiles:\n  quadlet: [quadlet/demo.container.j2]\n  sysusers: [sysusers.d/demo.conf]\n',
      'sysusers.d/demo.conf': 'g demo {{ gid("demo") }}\n',
    });
    await expectRefused(
      await build(dir),
      3,
      /error DEFINITION_INVALID: sysusers\.d\/demo\.conf: sysusers fragments cannot use host facts/,
    );
  });

  it('refuses bundle_path() to a file the bundle does not have', async () => {
    const dir = await writeBundleDir(
      join(work, 'demo'),
      minimalBundle(
        '[Container]\nImage={{ image }}:1\nEnvironmentFile={{ bundle_path("env/nope.env") }}\n',
      ),
    );
    await expectRefused(
      await build(dir),
      3,
      /bundle_path\("env\/nope\.env"\) is not a file of the bundle/,
    );
  });

  it('refuses bundle_path() of a Quadlet unit, which the host does not write where it points', async () => {
    const dir = await writeBundleDir(
      join(work, 'demo'),
      minimalBundle(
        '[Container]\nImage={{ image }}:1\nVolume={{ bundle_path("quadlet/demo.container") }}:/unit:ro\n',
      ),
    );
    await expectRefused(
      await build(dir),
      3,
      /error DEFINITION_INVALID: quadlet\/demo\.container\.j2: bundle_path\("quadlet\/demo\.container"\) names a Quadlet unit, which the host writes to generations\/<n>\/quadlet\/<bundle>\/, not to generations\/<n>\/bundles\/<bundle>\/ where the path resolves: bundle_path\(\) takes env, sysusers\.d and tmpfiles\.d files only/,
    );
  });

  it("refuses a rendered unit that quadlet rejects, with quadlet's own message", async () => {
    const dir = await writeBundleDir(
      join(work, 'demo'),
      minimalBundle('[Container]\nImage={{ image }}:1\nPublishPorts=80:80\n'),
    );
    await expectRefused(
      await build(dir),
      3,
      /error QUADLET_REJECTED: podman's quadlet rejects the rendered units: converting "demo\.container": unsupported key 'PublishPorts' in group 'Container'/,
    );
  });

  it('refuses when quadlet cannot be found, unless --no-quadlet-check', async () => {
    const dir = await writeBundleDir(join(work, 'demo'), minimalBundle(goodUnit));
    const missing = { ...env, RICK_QUADLET: join(work, 'no-such-quadlet') };
    const refused = await runBundleCli(
      ['build', dir, '--version', '1.2.3', '--out', out, '--installer', installer],
      { env: missing },
    );
    await expectRefused(
      refused,
      5,
      /error PREREQUISITE_MISSING: podman's quadlet generator not found/,
    );
    expect(refused.stderr).toMatch(/hint: .*--no-quadlet-check/);

    const skipped = await runBundleCli(
      [
        'build',
        dir,
        '--version',
        '1.2.3',
        '--out',
        out,
        '--installer',
        installer,
        '--no-quadlet-check',
      ],
      { env: missing },
    );
    expect(skipped.code).toBe(0);
    expect(skipped.stderr).toContain("warning: podman's quadlet check skipped");
    expect(await outputFiles()).toEqual(['demo-1.2.3.tgz']);
  });

  it('refuses a missing installer with a hint to build it', async () => {
    const dir = await writeBundleDir(join(work, 'demo'), minimalBundle(goodUnit));
    const result = await runBundleCli(
      ['build', dir, '--version', '1.2.3', '--out', out, '--installer', join(work, 'none.mjs')],
      { env },
    );
    await expectRefused(result, 2, /error INPUT_NOT_FOUND: cannot read the installer/);
  });

  it('refuses an invalid bundle.yaml, listing every problem at once', async () => {
    const dir = await writeBundleDir(join(work, 'demo'), {
      'bundle.yaml':
        'name: Demo_1\nfiles:\n  quadlet: [../x.container]\n  extra: []\nservices:\n  - unit: other.container\n    checks: [{ type: http, url: "http://example.org/", timeoutSec: 5 }]\n',
    });
    const result = await build(dir);
    await expectRefused(result, 3, /error DEFINITION_INVALID: /);
    expect(result.stderr).toContain('name: must be lowercase letters, digits and dashes');
    expect(result.stderr).toMatch(/files\.quadlet\.0: must be a relative path/);
    expect(result.stderr).toMatch(/files: Unrecognized key: "extra"/);
    expect(result.stderr).toMatch(
      /services\.0\.checks\.0\.url: must be an http:\/\/ URL on loopback/,
    );
  });

  it('replaces an existing bundle only by a complete new one', async () => {
    const dir = await writeBundleDir(join(work, 'demo'), minimalBundle(goodUnit));
    expect((await build(dir)).code).toBe(0);
    const before = await readFile(join(out, 'demo-1.2.3.tgz'));
    await writeFile(join(dir, 'quadlet/demo.container.j2'), '[Container]\nImage={{ nope }}\n');
    expect((await build(dir)).code).toBe(3);
    expect(await readdir(out)).toEqual(['demo-1.2.3.tgz']);
    expect((await readFile(join(out, 'demo-1.2.3.tgz'))).equals(before)).toBe(true);
    expect((await stat(join(out, 'demo-1.2.3.tgz'))).mode & 0o777).toBe(0o644);
  });

  it('refuses a broken copy of the authentik bundle', async () => {
    const dir = await copyAuthentik(work);
    await writeFile(
      join(dir, 'quadlet/authentik.pod.j2'),
      (await readFile(join(dir, 'quadlet/authentik.pod.j2'), 'utf8')).replace(
        'ShmSize',
        'ShmSizeMiB',
      ),
    );
    await expectRefused(await build(dir), 3, /unsupported key 'ShmSizeMiB' in group 'Pod'/);
  });
});
