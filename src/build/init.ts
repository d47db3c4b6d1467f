/**
 * `rick-bundle init NAME [--out DIR]`: a first bundle of one's own. One
 * container running as its own system user (created by a sysusers.d
 * fragment, so that `uid()` and `gid()` are the bundle's own accounts), its
 * HTTP port on loopback only: nothing beyond the restricted profile
 * (docs/policy.md), so it builds and installs on a host with no grant file.
 *
 * `planInit` is the pure part (the files, by path); `writeInit` refuses an
 * existing directory that holds anything, then writes them.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bundleNamePattern } from '../bundle/manifest.js';
import { RickError } from '../errors.js';

/** The files of a new bundle, by path relative to its directory. */
export function planInit(name: string): Map<string, string> {
  if (!bundleNamePattern.test(name)) {
    throw new RickError(
      'USAGE',
      `${JSON.stringify(name)} is not a bundle name: lowercase letters, digits and dashes, starting with a letter or digit, at most 63`,
    );
  }
  const files = new Map<string, string>();
  files.set(
    'bundle.yaml',
    `# ${name}: one container as its own system user, its HTTP port on loopback.
# Nothing here goes beyond rick's restricted profile (docs/policy.md), so
# hosts install it without a grant in /etc/rick/policy.d/. Build it with
#   rick-bundle build bundles/${name} --version 0.1.0
name: ${name}
description: ${name}, a first rick bundle

variables:
  # An image that runs as any user it is given and listens on 8080.
  image: docker.io/nginxinc/nginx-unprivileged
  image_tag: "1.27-alpine"
  # The system user the container runs as, created by sysusers.d/${name}.conf.
  service_user: ${name}
  # Loopback only: publishing beyond it is a need (ports) hosts must grant.
  http_port: 8080

files:
  quadlet:
    - quadlet/${name}.container.j2
  sysusers:
    - sysusers.d/${name}.conf.j2

services:
  - unit: ${name}.container
`,
  );
  files.set(
    `quadlet/${name}.container.j2`,
    `# {{ bundle_name }}: managed by rick, do not edit.
{% import "quadlet.j2" as quadlet %}
[Unit]
Description=${name}

[Container]
ContainerName=${name}
Image={{ image }}:{{ image_tag }}
# The bundle's own user, as each host numbers it.
User={{ uid(service_user) }}:{{ gid(service_user) }}
PublishPort=127.0.0.1:{{ http_port }}:8080

{{ quadlet.service_sections(300) }}
`,
  );
  files.set(
    `sysusers.d/${name}.conf.j2`,
    `# {{ bundle_name }}: managed by rick, do not edit.
u {{ service_user }} - "${name}" - /usr/sbin/nologin
`,
  );
  return files;
}

export interface InitResult {
  dir: string;
  files: string[];
}

/** Writes the new bundle; refuses a directory that already holds anything. */
export async function writeInit(
  name: string,
  options: { out?: string },
  deps: { cwd: string },
): Promise<InitResult> {
  const files = planInit(name);
  const dir = resolve(deps.cwd, options.out ?? join('bundles', name));
  const existing = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw new RickError('IO_ERROR', `cannot read ${dir}: ${error.message}`);
  });
  if (existing.length > 0) {
    throw new RickError('USAGE', `${dir} already holds files; refusing to write a bundle into it`, {
      hint: 'pass --out with a new or empty directory',
    });
  }
  for (const [path, text] of files) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), text, { flag: 'wx', mode: 0o644 });
  }
  return { dir, files: [...files.keys()] };
}
