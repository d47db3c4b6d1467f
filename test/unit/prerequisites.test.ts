import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/bundle/manifest.js';
import { isRickError } from '../../src/errors.js';
import {
  checkPodmanVersion,
  parsePodmanVersion,
  podmanRequirements,
} from '../../src/host/prerequisites.js';
import { buildTestBundle } from '../helpers/bundle-factory.js';

function manifestWith(podman: string, pod: boolean): Manifest {
  const { manifest } = buildTestBundle();
  return {
    ...manifest,
    requires: { podman },
    files: pod ? manifest.files : manifest.files.filter((f) => !f.path.endsWith('.pod')),
    services: [],
  };
}

function refusal(fn: () => void) {
  try {
    fn();
  } catch (error) {
    if (isRickError(error)) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('podman version', () => {
  it('parses podman --version output', () => {
    expect(parsePodmanVersion('podman version 5.4.2\n')).toBe('5.4.2');
    expect(parsePodmanVersion('podman version 4.3.1')).toBe('4.3.1');
    expect(parsePodmanVersion('podman-remote version 5.3.0-dev')).toBe('5.3.0');
    expect(parsePodmanVersion('podman version 5.3')).toBe('5.3.0');
    expect(parsePodmanVersion('bash: podman: command not found')).toBeUndefined();
    expect(parsePodmanVersion('')).toBeUndefined();
  });

  it('lists why each version is needed', () => {
    const needs = podmanRequirements(manifestWith('5.0.0', true));
    expect(needs.map((n) => n.version).sort()).toEqual(['5.0.0', '5.0.0', '5.3.0']);
    expect(needs.some((n) => /\.pod units/.test(n.reason))).toBe(true);
  });

  it('accepts a new enough podman', () => {
    expect(() => checkPodmanVersion('5.4.2', manifestWith('5.3.0', true))).not.toThrow();
    expect(() => checkPodmanVersion('5.3.0', manifestWith('5.0.0', true))).not.toThrow();
  });

  it('refuses podman older than 5.3 (symlinked unit directory), naming found and needed versions', () => {
    const error = refusal(() => checkPodmanVersion('4.9.3', manifestWith('4.4.0', false)));
    expect(error.code).toBe('PREREQUISITE_MISSING');
    expect(error.message).toMatch(
      /^podman 4\.9\.3 is too old: bundle demo needs podman 5\.3\.0 or later/,
    );
    expect(error.message).toMatch(/symlinked unit directory/);
  });

  it('names .pod units when podman predates them', () => {
    const error = refusal(() => checkPodmanVersion('4.9.0', manifestWith('4.4.0', true)));
    expect(error.message).toMatch(/5\.0\.0 because the bundle ships \.pod units/);
  });

  it('refuses podman older than what the bundle itself requires', () => {
    const error = refusal(() => checkPodmanVersion('5.3.1', manifestWith('5.4.0', false)));
    expect(error.message).toMatch(/podman 5\.3\.1 is too old: bundle demo needs podman 5\.4\.0/);
  });

  it('refuses a host without podman', () => {
    const error = refusal(() => checkPodmanVersion(undefined, manifestWith('5.3.0', false)));
    expect(error.code).toBe('PREREQUISITE_MISSING');
    expect(error.message).toMatch(/podman not found; bundle demo needs podman 5\.3\.0 or later/);
  });
});
