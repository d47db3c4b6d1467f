/**
 * rick-bundle build reads its own tarball back with the host's intake, so a
 * bundle every host would refuse fails the build instead of being published.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { useBuildWorkspace } from '../helpers/build-workspace.js';
import { writeBundleDir } from '../helpers/rick-bundle.js';

const ws = useBuildWorkspace('rick-build-policy-');
const { outputFiles } = ws;
const build = (dir: string) => ws.build(dir, ['--no-quadlet-check']);

function bundleWith(kind: 'sysusers' | 'tmpfiles', file: string, content: string) {
  return {
    'bundle.yaml': `name: demo\nneeds: { users: [root] }\nvariables:\n  image: docker.io/library/demo\nfiles:\n  quadlet: [quadlet/demo.container.j2]\n  ${kind}: [${file}]\n`,
    'quadlet/demo.container.j2':
      '[Container]\nImage={{ image }}:1\n\n[Install]\nWantedBy=multi-user.target\n',
    [file]: content,
  };
}

describe('rick-bundle build applies the host intake policy', () => {
  it('refuses a tmpfiles.d fragment outside the bundle state, and writes nothing', async () => {
    const dir = await writeBundleDir(
      join(ws.work, 'demo'),
      bundleWith('tmpfiles', 'tmpfiles.d/demo.conf', 'z /run/postgresql 0777 - -\n'),
    );
    const result = await build(dir);
    expect(result.stderr).toMatch(
      /^error BUNDLE_INVALID: tmpfiles\.d fragment refused: tmpfiles\.d\/demo\.conf:1: path \/run\/postgresql is outside the bundle's own state/m,
    );
    expect(result.code).toBe(ExitCode.invalidBundle);
    expect(await outputFiles()).toEqual([]);
  });

  it('refuses a sysusers.d fragment naming a primary group by number, and writes nothing', async () => {
    const dir = await writeBundleDir(
      join(ws.work, 'demo'),
      bundleWith('sysusers', 'sysusers.d/demo.conf', 'u demo 990:6\n'),
    );
    const result = await build(dir);
    expect(result.stderr).toMatch(
      /^error BUNDLE_INVALID: invalid sysusers\.d fragment: sysusers\.d\/demo\.conf:1: primary group 6 is a number, which names whatever group holds that GID; name the group/m,
    );
    expect(result.code).toBe(ExitCode.invalidBundle);
    expect(await outputFiles()).toEqual([]);
  });

  it('builds a bundle whose fragments keep to its own state', async () => {
    const dir = await writeBundleDir(
      join(ws.work, 'demo'),
      bundleWith('tmpfiles', 'tmpfiles.d/demo.conf', 'd /var/lib/demo 0750 root root -\n'),
    );
    const result = await build(dir);
    expect(result.stderr).not.toMatch(/error/);
    expect(result.code).toBe(ExitCode.ok);
    expect(await outputFiles()).toEqual(['demo-1.0.0.tgz']);
  });
});
