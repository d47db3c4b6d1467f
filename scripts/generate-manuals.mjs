#!/usr/bin/env node
// Writes the manual pages and bash completions of both programs from their
// commander definitions (dist/cli/, so run after tsc; `npm run build` does):
//
//   dist/man/man1/rick-install.1, dist/man/man1/rick-bundle.1
//   dist/bash-completion/completions/rick-install, …/rick-bundle
//   dist/installer/rick-install.1, dist/installer/rick-install.bash
//
// The last two lie beside the single-file installer: `rick-bundle build`
// ships them in every bundle with it, and bootstrap.sh installs them on a
// host. scripts/setup.sh links the first four into /usr/local/share.
//
// Deterministic: the page's date is SOURCE_DATE_EPOCH's day, else the day of
// the checkout's last commit, else 1970-01-01 (as a bundle's createdAt); the
// version is $RICK_VERSION (as the installer's, installer/build.mjs), else
// package.json's.
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(repo, 'dist');
const { describeProgram } = await import(join(dist, 'cli/reference.js'));
const { renderManPage } = await import(join(dist, 'cli/man-page.js'));
const { renderBashCompletion } = await import(join(dist, 'cli/completion.js'));
const { rickVersion } = await import(join(dist, 'version.js'));
const programs = [
  (await import(join(dist, 'cli/rick-install.js'))).createProgram(),
  (await import(join(dist, 'cli/rick-bundle.js'))).createProgram(),
];

function pageDate() {
  const sde = process.env.SOURCE_DATE_EPOCH;
  let seconds = 0;
  if (sde !== undefined && sde !== '') {
    if (!/^\d+$/.test(sde)) throw new Error(`SOURCE_DATE_EPOCH must be whole seconds, not ${sde}`);
    seconds = Number(sde);
  } else {
    try {
      const out = execFileSync('git', ['-C', repo, 'log', '-1', '--format=%ct'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
      if (/^\d+$/.test(out)) seconds = Number(out);
    } catch {
      // Not a git checkout (a source tarball): the epoch, as a bundle's createdAt.
    }
  }
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}

const date = pageDate();
const version = process.env.RICK_VERSION || rickVersion();
const write = async (path, text) => {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text, { mode: 0o644 });
};
for (const program of programs) {
  const reference = describeProgram(program);
  const page = renderManPage(reference, { date, version });
  const completion = renderBashCompletion(reference);
  await write(join(dist, 'man/man1', `${reference.name}.1`), page);
  await write(join(dist, 'bash-completion/completions', reference.name), completion);
  if (reference.name === 'rick-install') {
    await write(join(dist, 'installer/rick-install.1'), page);
    await write(join(dist, 'installer/rick-install.bash'), completion);
  }
}
