/**
 * A real container registry for tests: Debian's docker-registry (the
 * distribution registry, github.com/distribution/distribution) on a loopback
 * port with its own storage and config, images pushed into it by skopeo
 * from OCI layouts built here, and optionally distribution's token
 * authentication, with a token server that signs JWTs by a key whose
 * certificate the registry trusts (docs/spec/auth/token.md, jwt.md).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, createSign, randomBytes, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export interface TestRegistry {
  /** `127.0.0.1:<port>`: the domain of image references. */
  host: string;
  /** The token server's requests (query strings), when token auth is on. */
  tokenRequests: URLSearchParams[];
  /** Pushes an image built from `seed`; returns the digest of what the tag names. */
  push(repoTag: string, options: { seed: string; index?: boolean }): Promise<string>;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /**
   * `token`: distribution's token auth; `basic`: htpasswd, whose Basic
   * challenge pin cannot answer (nothing can be pushed to it here).
   */
  auth?: 'token' | 'basic';
}

const PUSH_USER = 'pusher';
const PUSH_PASSWORD = 'push-secret';
const SERVICE = 'rick-test-registry';
const ISSUER = 'rick-test-token-server';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/** A token server as distribution's spec describes it: anonymous pulls, pushes for one user. */
async function startTokenServer(dir: string): Promise<{
  realm: string;
  certFile: string;
  requests: URLSearchParams[];
  server: Server;
}> {
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=rick test token signer',
    ],
    { stdio: 'pipe' },
  );
  const key = await readFile(keyFile, 'utf8');
  const certDer = new X509Certificate(await readFile(certFile)).raw;
  const requests: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push(url.searchParams);
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    const user = basic ? Buffer.from(basic[1]!, 'base64').toString() : undefined;
    if (user !== undefined && user !== `${PUSH_USER}:${PUSH_PASSWORD}`) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end('{"details":"wrong credentials"}');
      return;
    }
    const access = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .map((scope) => {
        const [type, ...rest] = scope.split(':');
        const actions = (rest.pop() ?? '').split(',');
        // Anonymous: pull only, as ghcr.io and Docker Hub grant for public images.
        const granted = user ? actions : actions.filter((a) => a === 'pull');
        return { type, name: rest.join(':'), actions: granted };
      });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: ISSUER,
      sub: user ? PUSH_USER : '',
      aud: url.searchParams.get('service'),
      exp: now + 600,
      nbf: now - 60,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(input).sign(key);
    const token = `${input}.${b64url(signature)}`;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 600 }));
  });
  const port = await listen(server);
  return { realm: `http://127.0.0.1:${port}/token`, certFile, requests, server };
}

async function waitForRegistry(base: string, child: ChildProcess, log: () => string) {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${log()}`);
    try {
      const res = await fetch(`${base}/v2/`);
      if (res.status === 200 || res.status === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer on ${base}: ${log()}`);
}

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'rick-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let token: Awaited<ReturnType<typeof startTokenServer>> | undefined;
  let auth = '';
  if (options.auth === 'token') {
    token = await startTokenServer(dir);
    auth = `auth:
  token:
    realm: ${token.realm}
    service: ${SERVICE}
    issuer: ${ISSUER}
    rootcertbundle: ${token.certFile}
`;
  } else if (options.auth === 'basic') {
    // No file: the registry writes one with a user of its own (nothing is pushed to it).
    auth = `auth:
  htpasswd:
    realm: rick-test-basic
    path: ${join(dir, 'htpasswd')}
`;
  }
  await writeFile(
    join(dir, 'config.yml'),
    `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: ${host}
${auth}`,
  );
  let output = '';
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  await waitForRegistry(`http://${host}`, child, () => output);

  return {
    host,
    tokenRequests: token?.requests ?? [],
    async push(repoTag, pushOptions) {
      const layout = join(dir, `layout-${randomBytes(4).toString('hex')}`);
      const { digest, tag } = await writeOciLayout(layout, repoTag, pushOptions);
      // Not execFileSync: skopeo asks the token server, which runs in this process.
      await execFileAsync('skopeo', [
        '--insecure-policy',
        'copy',
        '--quiet',
        ...(pushOptions.index ? ['--all'] : []),
        '--preserve-digests',
        '--dest-tls-verify=false',
        ...(options.auth === 'token' ? ['--dest-creds', `${PUSH_USER}:${PUSH_PASSWORD}`] : []),
        `oci:${layout}:${tag}`,
        `docker://${host}/${repoTag}`,
      ]);
      await rm(layout, { recursive: true, force: true });
      return digest;
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      if (token) await new Promise((r) => token.server.close(r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

interface Blob {
  digest: string;
  size: number;
  data: Buffer;
}

function blob(data: Buffer | string): Blob {
  const bytes = Buffer.from(data);
  return {
    digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    size: bytes.length,
    data: bytes,
  };
}

/** A one-file layer, as a real tar (made by tar(1)). */
async function layerTar(dir: string, seed: string): Promise<Buffer> {
  const src = join(dir, 'layer-src');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'seed.txt'), `${seed}\n`);
  return execFileSync('tar', [
    '-C',
    src,
    '--sort=name',
    '--mtime=@0',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '-cf',
    '-',
    'seed.txt',
  ]);
}

/**
 * An OCI image layout (image-layout.md) holding one image, a single
 * manifest or an index of two platforms; returns the digest of its top
 * manifest, which is what the registry will name the tag by.
 */
async function writeOciLayout(
  dir: string,
  repoTag: string,
  options: { seed: string; index?: boolean },
): Promise<{ digest: string; tag: string }> {
  const tag = repoTag.slice(repoTag.lastIndexOf(':') + 1);
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  const blobs: Blob[] = [];
  const add = (b: Blob) => {
    blobs.push(b);
    return b;
  };
  const image = async (arch: string) => {
    const layer = add(blob(await layerTar(join(dir, `src-${arch}`), `${options.seed} ${arch}`)));
    const config = add(
      blob(
        JSON.stringify({
          architecture: arch,
          os: 'linux',
          config: { Cmd: ['/bin/true'] },
          rootfs: { type: 'layers', diff_ids: [layer.digest] },
        }),
      ),
    );
    return add(
      blob(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: config.digest,
            size: config.size,
          },
          layers: [
            {
              mediaType: 'application/vnd.oci.image.layer.v1.tar',
              digest: layer.digest,
              size: layer.size,
            },
          ],
        }),
      ),
    );
  };
  let top: Blob;
  let mediaType: string;
  if (options.index) {
    const amd64 = await image('amd64');
    const arm64 = await image('arm64');
    top = add(
      blob(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: [
            {
              mediaType: OCI_MANIFEST,
              digest: amd64.digest,
              size: amd64.size,
              platform: { architecture: 'amd64', os: 'linux' },
            },
            {
              mediaType: OCI_MANIFEST,
              digest: arm64.digest,
              size: arm64.size,
              platform: { architecture: 'arm64', os: 'linux' },
            },
          ],
        }),
      ),
    );
    mediaType = OCI_INDEX;
  } else {
    top = await image('amd64');
    mediaType = OCI_MANIFEST;
  }
  for (const b of blobs) {
    await writeFile(join(dir, 'blobs/sha256', b.digest.slice('sha256:'.length)), b.data);
  }
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType,
          digest: top.digest,
          size: top.size,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return { digest: top.digest, tag };
}

/**
 * A proxy in front of a registry that breaks manifest answers the way a
 * failing registry does: `status500` answers as distribution does on an
 * internal error, `noDigestHeader` drops Docker-Content-Digest,
 * `digest` replaces it.
 */
export async function startRegistryProxy(
  target: string,
  mode: { status500?: boolean; noDigestHeader?: boolean; digest?: string },
): Promise<{ host: string; stop(): Promise<void> }> {
  const server = createServer((req, res) => {
    const isManifest = /\/manifests\//.test(req.url ?? '');
    if (mode.status500 && isManifest) {
      const body = '{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}\n';
      res.writeHead(500, {
        'Content-Type': 'application/json; charset=utf-8',
        'Docker-Distribution-Api-Version': 'registry/2.0',
        'Content-Length': String(Buffer.byteLength(body)),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const upstream = httpRequest(
      `http://${target}${req.url}`,
      { method: req.method, headers: { ...req.headers, host: target } },
      (up) => {
        const headers = { ...up.headers };
        if (isManifest && mode.noDigestHeader) delete headers['docker-content-digest'];
        if (isManifest && mode.digest) headers['docker-content-digest'] = mode.digest;
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
      },
    );
    req.pipe(upstream);
  });
  const port = await listen(server);
  return {
    host: `127.0.0.1:${port}`,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
