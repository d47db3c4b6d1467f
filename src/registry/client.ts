/**
 * Asks a registry's HTTP API v2 (the OCI distribution spec) which digest a
 * tag names now: a HEAD on the manifest, accepting the four manifest media
 * types podman pulls, and the digest from `Docker-Content-Digest` (else a GET
 * and the sha256 of the body, which is what the digest is).
 *
 * Registries that require a token (ghcr.io and docker.io even for public
 * images) answer 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`;
 * an anonymous token is fetched from the realm and the request is made again,
 * as in distribution's token authentication spec (docs/spec/auth/token.md).
 *
 * Plain HTTP only on loopback (tests, local mirrors); a redirect or a token
 * realm that would leave HTTPS elsewhere is refused. The proxy variables are
 * honoured through undici's EnvHttpProxyAgent, as the feed client does.
 */
import { createHash } from 'node:crypto';
import { describe, RickError } from '../errors.js';
import { type ImageReference, isLoopbackHost, registryBaseUrl, registryHost } from './reference.js';

/** Manifest media types accepted, most specific last as registries read Accept lists. */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

/** The part of fetch the client uses: the real global fetch, or undici's behind a proxy. */
export type Fetch = (url: string, init: RequestInit) => Promise<Response>;

export interface RegistryClientOptions {
  env: NodeJS.ProcessEnv;
  /** Milliseconds for each request. */
  timeoutMs?: number;
}

/** A manifest is small; an index of many platforms stays well under this. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const sha256Digest = /^sha256:[0-9a-f]{64}$/;

function proxyConfigured(env: NodeJS.ProcessEnv): boolean {
  return ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => !!env[k]);
}

async function fetchFor(env: NodeJS.ProcessEnv): Promise<Fetch> {
  if (!proxyConfigured(env)) return (url, init) => fetch(url, init);
  const undici = await import('undici');
  const dispatcher = new undici.EnvHttpProxyAgent({
    ...(env.HTTPS_PROXY || env.https_proxy
      ? { httpsProxy: env.HTTPS_PROXY ?? env.https_proxy }
      : {}),
    ...(env.HTTP_PROXY || env.http_proxy ? { httpProxy: env.HTTP_PROXY ?? env.http_proxy } : {}),
    ...(env.NO_PROXY || env.no_proxy ? { noProxy: env.NO_PROXY ?? env.no_proxy } : {}),
  });
  return (url, init) =>
    undici.fetch(url, { ...(init as object), dispatcher }) as unknown as Promise<Response>;
}

/** A Bearer challenge's parameters, or undefined for any other scheme. */
export function parseBearerChallenge(header: string | null): Record<string, string> | undefined {
  if (!header) return undefined;
  const match = /^\s*Bearer\s+(.*)$/i.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/g;
  for (const m of match[1]!.matchAll(re)) {
    params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '');
  }
  return params;
}

function allowedUrl(url: string): boolean {
  const parsed = new URL(url);
  return (
    parsed.protocol === 'https:' || (parsed.protocol === 'http:' && isLoopbackHost(parsed.host))
  );
}

/** `ghcr.io/x/y:1.2 (registry ghcr.io)`: what every message names. */
function named(ref: ImageReference): string {
  return `image ${ref.written} (registry ${registryHost(ref)})`;
}

function statusText(res: Response): string {
  return `${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
}

/** The registry's own error codes (`MANIFEST_UNKNOWN: manifest unknown`), when its body has them. */
async function errorDetail(res: Response): Promise<string> {
  try {
    const text = (await res.text()).slice(0, 4096);
    const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const errors = (body.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': '));
    return errors.length ? ` (${errors.join('; ')})` : '';
  } catch {
    return '';
  }
}

export interface RegistryClient {
  /** The digest the reference's tag names now; throws IMAGE_NOT_FOUND or REGISTRY_ERROR. */
  resolveDigest(ref: ImageReference): Promise<string>;
}

export async function createRegistryClient(
  options: RegistryClientOptions,
): Promise<RegistryClient> {
  const doFetch = await fetchFor(options.env);
  const timeoutMs = options.timeoutMs ?? 60_000;
  // One anonymous token per registry and scope for the run.
  const tokens = new Map<string, string>();

  const request = async (ref: ImageReference, url: string, init: RequestInit) => {
    let res: Response;
    try {
      res = await doFetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      throw new RickError(
        'REGISTRY_ERROR',
        `${named(ref)}: cannot reach ${new URL(url).origin}: ${describe(error)}`,
        { cause: error, hint: 'check the registry name and the network (HTTPS_PROXY is honoured)' },
      );
    }
    if (!allowedUrl(res.url || url)) {
      throw new RickError(
        'REGISTRY_ERROR',
        `${named(ref)}: the registry redirected to plain HTTP (${res.url}); only a loopback registry may speak HTTP`,
      );
    }
    return res;
  };

  const fetchToken = async (ref: ImageReference, challenge: Record<string, string>) => {
    const realm = challenge.realm;
    if (!realm || !/^https?:\/\//.test(realm) || !allowedUrl(realm)) {
      throw new RickError(
        'REGISTRY_ERROR',
        `${named(ref)}: answered 401 with a Bearer challenge whose realm ${JSON.stringify(realm ?? '')} is not an HTTPS URL`,
      );
    }
    const url = new URL(realm);
    if (challenge.service) url.searchParams.set('service', challenge.service);
    url.searchParams.set('scope', challenge.scope ?? `repository:${ref.repository}:pull`);
    const key = url.toString();
    const known = tokens.get(key);
    if (known) return known;
    const res = await request(ref, key, { method: 'GET', headers: { Accept: 'application/json' } });
    if (!res.ok) {
      throw new RickError(
        'REGISTRY_ERROR',
        `${named(ref)}: the token server ${url.origin} answered ${statusText(res)}${await errorDetail(res)}`,
        {
          hint: 'pin asks for an anonymous pull token; a private image needs a registry mirror on loopback, or a public tag',
        },
      );
    }
    let token: unknown;
    try {
      const body = (await res.json()) as { token?: unknown; access_token?: unknown };
      token = body.token ?? body.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '') {
      throw new RickError(
        'REGISTRY_ERROR',
        `${named(ref)}: the token server ${url.origin} answered without a token`,
      );
    }
    tokens.set(key, token);
    return token;
  };

  const manifest = async (ref: ImageReference, method: 'HEAD' | 'GET') => {
    const url = `${registryBaseUrl(ref)}${ref.repository}/manifests/${ref.tag}`;
    const headers: Record<string, string> = { Accept: MANIFEST_MEDIA_TYPES.join(', ') };
    let res = await request(ref, url, { method, headers });
    if (res.status === 401) {
      const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
      if (!challenge) {
        throw new RickError(
          'REGISTRY_ERROR',
          `${named(ref)}: the registry answered ${statusText(res)} without a Bearer challenge${
            res.headers.get('www-authenticate')
              ? ` (WWW-Authenticate: ${res.headers.get('www-authenticate')})`
              : ''
          }`,
          { hint: 'pin reads public images with anonymous tokens; it sends no credentials' },
        );
      }
      const token = await fetchToken(ref, challenge);
      res = await request(ref, url, {
        method,
        headers: { ...headers, Authorization: `Bearer ${token}` },
      });
      if (res.status === 401) {
        throw new RickError(
          'REGISTRY_ERROR',
          `${named(ref)}: the registry answered ${statusText(res)} to the anonymous token${await errorDetail(res)}`,
          { hint: 'the image may be private: pin reads public images only' },
        );
      }
    }
    if (res.status === 404) {
      throw new RickError(
        'IMAGE_NOT_FOUND',
        `${named(ref)}: the registry has no tag ${ref.tag} of ${ref.repository} (${statusText(res)})${await errorDetail(res)}`,
        { hint: 'check the tag in the unit template or the --vars file; images.lock is unchanged' },
      );
    }
    if (!res.ok) {
      throw new RickError(
        'REGISTRY_ERROR',
        `${named(ref)}: the registry answered ${statusText(res)}${await errorDetail(res)}`,
        { hint: 'images.lock is unchanged; run pin again once the registry answers' },
      );
    }
    return res;
  };

  return {
    async resolveDigest(ref) {
      if (ref.digest !== undefined) {
        throw new RickError(
          'IMAGE_REFERENCE_INVALID',
          `image ${ref.written}: already carries a digest; pin reads the digest of a tag`,
          {
            hint: 'write the tag alone in the unit (Image=name:tag): images.lock holds its digest',
          },
        );
      }
      const head = await manifest(ref, 'HEAD');
      let digest = head.headers.get('docker-content-digest') ?? undefined;
      if (digest === undefined) {
        // Not every registry sends the header: the digest is the sha256 of the manifest's bytes.
        const res = await manifest(ref, 'GET');
        const body = Buffer.from(await res.arrayBuffer());
        if (body.length > MAX_MANIFEST_BYTES) {
          throw new RickError(
            'REGISTRY_ERROR',
            `${named(ref)}: the manifest is over ${MAX_MANIFEST_BYTES} bytes`,
          );
        }
        digest =
          res.headers.get('docker-content-digest') ??
          `sha256:${createHash('sha256').update(body).digest('hex')}`;
      }
      if (!sha256Digest.test(digest)) {
        throw new RickError(
          'REGISTRY_ERROR',
          `${named(ref)}: the registry gave the digest ${JSON.stringify(digest.slice(0, 100))}, not sha256:<64 hex digits>`,
          { hint: 'rick pins sha256 digests only' },
        );
      }
      return digest;
    },
  };
}
