import { describe, expect, it } from 'vitest';
import { parseBearerChallenge } from '../../src/registry/client.js';
import { parseImagesLock, serializeImagesLock } from '../../src/registry/images-lock.js';
import {
  isLoopbackHost,
  parseImageReference,
  registryBaseUrl,
} from '../../src/registry/reference.js';
import { findUnitImages, pinUnitImages } from '../../src/registry/unit-images.js';

describe('image references', () => {
  it("follows docker.io's rules: library/ for one-component names, registry-1.docker.io for the API", () => {
    const redis = parseImageReference('redis:7');
    expect(redis).toMatchObject({ domain: 'docker.io', repository: 'library/redis', tag: '7' });
    expect(registryBaseUrl(redis)).toBe('https://registry-1.docker.io/v2/');
    expect(parseImageReference('docker.io/grafana/grafana')).toMatchObject({
      repository: 'grafana/grafana',
      tag: 'latest',
    });
    expect(parseImageReference('docker://docker.io/library/redis:7').repository).toBe(
      'library/redis',
    );
  });

  it('reads a registry with a port, and HTTP only on loopback', () => {
    const local = parseImageReference('127.0.0.1:5000/team/app:1.0');
    expect(local).toMatchObject({ domain: '127.0.0.1:5000', repository: 'team/app', tag: '1.0' });
    expect(registryBaseUrl(local)).toBe('http://127.0.0.1:5000/v2/');
    expect(registryBaseUrl(parseImageReference('localhost:5000/app'))).toBe(
      'http://localhost:5000/v2/',
    );
    expect(registryBaseUrl(parseImageReference('ghcr.io/goauthentik/server:2025.10.2'))).toBe(
      'https://ghcr.io/v2/',
    );
    expect(isLoopbackHost('[::1]:5000')).toBe(true);
    expect(isLoopbackHost('127.0.0.1.example.org')).toBe(false);
    expect(isLoopbackHost('10.0.0.1:5000')).toBe(false);
  });

  it('keeps a digest written in the reference, and refuses what is not a registry image', () => {
    const d = `sha256:${'c'.repeat(64)}`;
    expect(parseImageReference(`ghcr.io/x/y:1@${d}`)).toMatchObject({ tag: '1', digest: d });
    expect(() => parseImageReference('oci-archive:/srv/image.tar')).toThrow(
      /image oci-archive:\/srv\/image\.tar: not a registry image/,
    );
    expect(() => parseImageReference('ghcr.io/Upper/y:1')).toThrow(/is not a repository name/);
  });
});

describe('Bearer challenges', () => {
  it("reads distribution's and ghcr.io's challenge", () => {
    expect(
      parseBearerChallenge(
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:goauthentik/server:pull"',
      ),
    ).toEqual({
      realm: 'https://ghcr.io/token',
      service: 'ghcr.io',
      scope: 'repository:goauthentik/server:pull',
    });
    expect(parseBearerChallenge('Basic realm="registry"')).toBeUndefined();
    expect(parseBearerChallenge(null)).toBeUndefined();
  });
});

describe('Image= lines and images.lock', () => {
  const d = `sha256:${'d'.repeat(64)}`;
  it('finds registry images of .container and .image units only, and pins the locked ones', () => {
    const unit =
      '[Unit]\nDescription=Image=not.this\n[Container]\nImage = ghcr.io/x/app:1 \nPull=newer\n';
    expect(findUnitImages('app.container', unit)).toEqual([
      { unit: 'app.container', reference: 'ghcr.io/x/app:1', line: 3 },
    ]);
    expect(findUnitImages('app.container', '[Container]\nImage=tool.image\n')).toEqual([]);
    expect(findUnitImages('app.pod', '[Pod]\nImage=x\n')).toEqual([]);
    const pinned = pinUnitImages('app.container', unit, new Map([['ghcr.io/x/app:1', d]]));
    expect(pinned.content).toBe(
      `[Unit]\nDescription=Image=not.this\n[Container]\nImage=ghcr.io/x/app:1@${d}\nPull=newer\n`,
    );
    expect(pinned.unpinned).toEqual([]);
  });

  it('serializes sorted with a final newline, and parses back', () => {
    const text = serializeImagesLock(
      new Map([
        ['z/b:1', d],
        ['a/c:2', d],
      ]),
    );
    expect(text).toBe(
      `{\n  "schemaVersion": 1,\n  "images": {\n    "a/c:2": "${d}",\n    "z/b:1": "${d}"\n  }\n}\n`,
    );
    expect(parseImagesLock(text, 'images.lock').images).toEqual({ 'a/c:2': d, 'z/b:1': d });
    expect(() => parseImagesLock('{"schemaVersion":1,"images":{"a@x":"sha1:00"}}', 'L')).toThrow(
      /L: images\.a@x: must be sha256:<64 lowercase hex digits>; images\.a@x: must be an image reference without a digest/,
    );
  });
});
