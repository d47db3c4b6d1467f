/**
 * The small checks of what a unit names beyond its own container, pure: a
 * socket's addresses, image transports, volume and unit ownership, the
 * grant directories, and the grant keys they add.
 */
import { describe, expect, it } from 'vitest';
import { emptyNeeds, recordedNeeds } from '../../src/bundle/needs.js';
import { parseUnitFile } from '../../src/bundle/unit-file.js';
import { bundleNames } from '../../src/host/policy/bundle-names.js';
import {
  imageSource,
  joinedContainer,
  namedVolume,
  secretUse,
  volumeName,
} from '../../src/host/policy/controls.js';
import { grantLines, parseGrant } from '../../src/host/policy/grant.js';
import { grantDirProblems, grantDirs } from '../../src/host/policy/grant-dirs.js';
import { activatedService, socketAddress } from '../../src/host/policy/socket-check.js';
import { isOwnUnit } from '../../src/host/policy/unit-references.js';

const unit = (name: string, text: string) => ({ name, groups: parseUnitFile(text, name).groups });
const names = bundleNames(
  'app',
  [
    unit('app.container', '[Container]\nImage=x\n'),
    unit('side.container', '[Container]\nContainerName=app-side\n'),
    unit('app.pod', '[Pod]\nPodName=app\n'),
    unit('data.volume', '[Volume]\n'),
    unit('tpl@.container', '[Container]\nImage=x\n'),
  ],
  ['app-fix.service'],
);

describe('bundleNames', () => {
  it("names the containers, pods, volumes and units quadlet makes of a bundle's units", () => {
    for (const c of ['app-side', 'app.container', 'side.container', 'systemd-app'])
      expect(names.containers.has(c)).toBe(true);
    expect(names.containers.has('gitea')).toBe(false);
    expect([...names.pods].sort()).toEqual(['app', 'app.pod']);
    expect([...names.volumes].sort()).toEqual(['data.volume', 'systemd-data']);
    expect(names.units.has('app-pod.service')).toBe(true);
    expect(names.units.has('data-volume.service')).toBe(true);
    expect(names.units.has('app-fix.service')).toBe(true);
  });
  it('an instance of a template the bundle has is its own', () => {
    expect(isOwnUnit(names, 'tpl@1.service')).toBe(true);
    expect(isOwnUnit(names, 'getty@tty1.service')).toBe(false);
  });
});

describe('controls', () => {
  it('joining another container', () => {
    expect(joinedContainer(names, 'pid', 'container:app-side', false)).toBeUndefined();
    expect(joinedContainer(names, 'network', 'side.container', true)).toBeUndefined();
    expect(joinedContainer(names, 'network', 'bridge', false)).toBeUndefined();
    expect(joinedContainer(names, 'ipc', 'container:gitea', false)?.need).toEqual({
      kind: 'privileged',
    });
  });
  it('secrets by name or source=', () => {
    expect(secretUse('tok,type=env,target=T').need).toEqual({ kind: 'secrets', value: 'tok' });
    expect(secretUse('type=mount,source=k').need).toEqual({ kind: 'secrets', value: 'k' });
  });
  it('named volumes: own, named after the bundle, or granted', () => {
    expect(namedVolume(names, 'systemd-data')).toBeUndefined();
    expect(namedVolume(names, 'app-cache')).toBeUndefined();
    expect(namedVolume(names, 'apple')?.need).toEqual({ kind: 'volumes', value: 'apple' });
    expect(namedVolume(names, 'gitea.volume')?.need).toEqual({
      kind: 'volumes',
      value: 'gitea.volume',
    });
    expect(volumeName('app', 'data.volume', 'systemd-data')).toBeUndefined();
    expect(volumeName('app', 'data.volume', 'systemd-gitea-data')?.need.kind).toBe('volumes');
  });
  it('image transports that read the host', () => {
    expect(imageSource('docker.io/library/app:1')).toBeUndefined();
    expect(imageSource('localhost:5000/app')).toBeUndefined();
    expect(imageSource('docker://quay.io/x')).toBeUndefined();
    expect(imageSource('oci-archive:/root/x.tar:app')).toMatchObject({ path: '/root/x.tar' });
    expect(imageSource('dir:/srv/img')).toMatchObject({ path: '/srv/img' });
    expect(imageSource('docker-archive:/x.tar')).toMatchObject({ path: '/x.tar' });
    expect(imageSource('docker-daemon:app:1')).toMatchObject({ path: '/var/run/docker.sock' });
    expect(imageSource('oci:relative')).toMatchObject({ need: { kind: 'privileged' } });
    expect(imageSource('containers-storage:[overlay@/x+/y]app')).toMatchObject({
      need: { kind: 'privileged' },
    });
  });
});

describe('socket addresses, as systemd reads them', () => {
  it.each([
    ['23', 'tcp', { port: '*:23/tcp' }],
    ['0.0.0.0:23', 'tcp', { port: '0.0.0.0:23/tcp' }],
    ['127.0.0.1:80', 'tcp', { port: '127.0.0.1:80/tcp' }],
    ['[::]:53', 'udp', { port: '[::]:53/udp' }],
    ['[fe80::1%eth0]:53', 'udp', { port: '[fe80::1]:53/udp' }],
    ['/run/app.sock', 'tcp', { path: '/run/app.sock' }],
  ] as const)('%s (%s)', (value, protocol, expected) => {
    expect(socketAddress(value, protocol)).toEqual(expected);
  });
  it('refuses abstract, vsock and unreadable addresses', () => {
    for (const v of ['@x', 'vsock:2:22', 'localhost:80', '99999'])
      expect(socketAddress(v, 'tcp')).toHaveProperty('refuse');
  });
  it('activates <name>.service, or the template with Accept=yes', () => {
    expect(activatedService('app.socket', false)).toBe('app.service');
    expect(activatedService('app.socket', true)).toBe('app@.service');
  });
});

describe('grant directories', () => {
  const st = (mode: number, uid = 0, kind: 'dir' | 'link' = 'dir') => ({
    isDirectory: () => kind === 'dir',
    isSymbolicLink: () => kind === 'link',
    mode,
    uid,
  });
  it('checks /etc, /etc/rick and /etc/rick/policy.d below the root', () => {
    expect(grantDirs('/t')).toEqual(['/t/etc', '/t/etc/rick', '/t/etc/rick/policy.d']);
  });
  it('as the file: a real directory, root-owned, not group- or world-writable', () => {
    expect(grantDirProblems(st(0o40755), 0)).toEqual([]);
    expect(grantDirProblems(st(0o40777), 0)).toEqual(['is writable by others']);
    expect(grantDirProblems(st(0o40775), 0)).toEqual(['is writable by its group']);
    expect(grantDirProblems(st(0o40755, 1000), 0)).toEqual(['belongs to uid 1000, not root']);
    expect(grantDirProblems(st(0o120777, 0, 'link'), 0)).toEqual(['is a symbolic link']);
  });
});

describe('the new grant keys', () => {
  it('SECRETS, VOLUMES and UNITS read and print back', () => {
    const g = parseGrant(
      'SECRETS=tok\nVOLUMES=systemd-gitea-data gitea.volume\nUNITS=podman.service\n',
      'x.conf',
    );
    expect(g.needs.secrets).toEqual(['tok']);
    expect(g.needs.volumes).toEqual(['gitea.volume', 'systemd-gitea-data']);
    expect(g.needs.units).toEqual(['podman.service']);
    expect(
      grantLines([
        { kind: 'units', value: 'podman.service' },
        { kind: 'secrets', value: 'tok' },
      ]),
    ).toEqual(['SECRETS=tok', 'UNITS=podman.service']);
  });
  it('refuses malformed values', () => {
    expect(() => parseGrant('SECRETS=a/b\nVOLUMES=,\nUNITS=podman\n', 'x.conf')).toThrow(
      /line 1: SECRETS "a\/b" must be a podman secret name; line 3: UNITS "podman" must be a systemd unit name/,
    );
  });
  it('the manifest records the later kinds only when used', () => {
    expect(Object.keys(recordedNeeds(emptyNeeds()))).not.toContain('units');
    expect(recordedNeeds({ ...emptyNeeds(), units: ['x.service'] }).units).toEqual(['x.service']);
  });
});
