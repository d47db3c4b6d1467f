/**
 * Image references as podman reads an `Image=` of a Quadlet unit, and where
 * the registry's HTTP API v2 serves them. Pure.
 *
 * The grammar is distribution's (github.com/distribution/reference):
 * `[domain/]path[:tag][@digest]`, the domain being the first component when
 * it holds a `.` or a `:` or is `localhost`. Without one the reference is
 * Docker Hub's (`docker.io`), whose one-component names live under
 * `library/` and whose API is served by `registry-1.docker.io`, as
 * distribution's `ParseNormalizedNamed` and podman's own pulls resolve them.
 */
import { RickError } from '../errors.js';

export interface ImageReference {
  /** As written in the unit (without a `docker://` transport prefix). */
  written: string;
  /** The registry as named, e.g. `ghcr.io`, `docker.io`, `127.0.0.1:5000`. */
  domain: string;
  /** The repository on that registry, e.g. `goauthentik/server`, `library/redis`. */
  repository: string;
  /** The tag; `latest` when none is written, as podman pulls it. */
  tag: string;
  /** A digest written in the reference, if any. */
  digest: string | undefined;
}

const DOCKER_HUB = 'docker.io';
/** Transports (containers-transports(5)) other than a registry's: nothing to pin. */
const otherTransports =
  /^(containers-storage|dir|docker-archive|docker-daemon|oci|oci-archive|sif):/;
const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const domainPattern =
  /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]+)?$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;
const digestPattern = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

function invalid(image: string, why: string): RickError {
  return new RickError('IMAGE_REFERENCE_INVALID', `image ${image}: ${why}`, {
    hint: 'write Image= as [registry/]name[:tag], e.g. ghcr.io/goauthentik/server:2025.10.2',
  });
}

/** Parses an `Image=` value; throws IMAGE_REFERENCE_INVALID naming the image. */
export function parseImageReference(value: string): ImageReference {
  const written = value.startsWith('docker://') ? value.slice('docker://'.length) : value;
  if (otherTransports.test(written)) {
    throw invalid(value, 'not a registry image (a transport other than docker://)');
  }
  const at = written.indexOf('@');
  const named = at < 0 ? written : written.slice(0, at);
  const digest = at < 0 ? undefined : written.slice(at + 1);
  if (digest !== undefined && !digestPattern.test(digest)) {
    throw invalid(value, `${JSON.stringify(digest)} is not a digest`);
  }
  const slash = named.indexOf('/');
  const first = slash < 0 ? '' : named.slice(0, slash);
  const hasDomain =
    slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const domain = hasDomain ? first : DOCKER_HUB;
  const rest = hasDomain ? named.slice(slash + 1) : named;
  // A tag's colon comes after the last slash; a port's before it.
  const colon = rest.lastIndexOf(':');
  const path = colon > rest.lastIndexOf('/') && colon >= 0 ? rest.slice(0, colon) : rest;
  const tag = colon > rest.lastIndexOf('/') && colon >= 0 ? rest.slice(colon + 1) : undefined;
  if (!domainPattern.test(domain))
    throw invalid(value, `${JSON.stringify(domain)} is not a registry`);
  const components = path.split('/');
  if (path === '' || !components.every((c) => pathComponent.test(c))) {
    throw invalid(
      value,
      `${JSON.stringify(path)} is not a repository name (lowercase letters, digits and separators)`,
    );
  }
  if (tag !== undefined && !tagPattern.test(tag)) {
    throw invalid(value, `${JSON.stringify(tag)} is not a tag`);
  }
  const hub = domain === DOCKER_HUB || domain === 'index.docker.io';
  return {
    written,
    domain,
    repository: hub && components.length === 1 ? `library/${path}` : path,
    tag: tag ?? 'latest',
    digest,
  };
}

/** The host (and port) whose API v2 serves the reference's repository. */
export function registryHost(ref: ImageReference): string {
  return ref.domain === DOCKER_HUB || ref.domain === 'index.docker.io'
    ? 'registry-1.docker.io'
    : ref.domain;
}

/**
 * A registry on a loopback address may speak plain HTTP (tests, a local
 * mirror); every other one is asked over HTTPS.
 */
export function isLoopbackHost(host: string): boolean {
  const name = host.replace(/:[0-9]+$/, '').replace(/^\[(.*)\]$/, '$1');
  return name === 'localhost' || name === '::1' || /^127(?:\.[0-9]{1,3}){3}$/.test(name);
}

/** The base URL of the registry's API v2 for a reference. */
export function registryBaseUrl(ref: ImageReference): string {
  const host = registryHost(ref);
  return `${isLoopbackHost(host) ? 'http' : 'https'}://${host}/v2/`;
}

/** `Image=` as the build renders a pinned image: the reference, then its digest. */
export function pinnedReference(reference: string, digest: string): string {
  return `${reference}@${digest}`;
}
