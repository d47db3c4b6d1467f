/**
 * The workflow auditor the workflow tests run (zizmor is packaged neither
 * for Debian 13 nor for npm): the supply-chain rules the release pipeline
 * relies on, each a function of one workflow file's text that returns what
 * breaks it, one line each.
 */
import { parse } from 'yaml';

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Job {
  uses?: string;
  steps?: Step[];
  env?: Record<string, unknown>;
  with?: Record<string, unknown>;
  secrets?: unknown;
  environment?: unknown;
  permissions?: unknown;
}
interface Workflow {
  permissions?: unknown;
  jobs?: Record<string, Job>;
}

/**
 * A job that runs the build toolchain: installs packages with their install
 * scripts, builds the installer, or runs the checks (esbuild, Caddy,
 * systemd-analyze, a quadlet unpacked from a downloaded package).
 */
export function runsToolchain(job: Job): boolean {
  return (job.steps ?? []).some((s) => {
    const run = s.run ?? '';
    return (
      /\bnpm (ci|install|i)\b(?![^\n]*--ignore-scripts)/.test(run) ||
      /\bnpm run (build|check|release:build|test)/.test(run) ||
      run.includes('scripts/setup.sh')
    );
  });
}

const WRITE_PERMISSIONS_ONLY_FOR_ATTESTING = ['id-token', 'attestations'];

export function auditWorkflow(text: string): string[] {
  const problems: string[] = [];
  const workflow = parse(text) as Workflow;

  // 1. Every action is pinned by a full commit SHA, its version in a comment.
  for (const [i, line] of text.split('\n').entries()) {
    const m = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(line);
    if (!m?.[1] || m[1].startsWith('./')) continue;
    const ref = m[1].split('@')[1] ?? '';
    if (m[1].startsWith('docker://')) {
      if (!/@sha256:[0-9a-f]{64}$/.test(m[1])) {
        problems.push(`line ${i + 1}: ${m[1]} is not pinned by digest`);
      }
    } else if (!/^[0-9a-f]{40}$/.test(ref)) {
      problems.push(`line ${i + 1}: ${m[1]} is not pinned by a full commit SHA`);
    } else if (!/#\s*v\d/.test(m[2] ?? '')) {
      problems.push(`line ${i + 1}: ${m[1]} does not name its version in a comment`);
    }
  }
  // Container images by digest.
  for (const [i, line] of text.split('\n').entries()) {
    const m = /^\s*(?:container|image):\s*(\S+)/.exec(line);
    if (m?.[1] && !/@sha256:[0-9a-f]{64}$/.test(m[1]) && !m[1].startsWith('$')) {
      problems.push(`line ${i + 1}: image ${m[1]} is not pinned by digest`);
    }
  }

  if (workflow.permissions === undefined || JSON.stringify(workflow.permissions) !== '{}') {
    problems.push('the workflow must grant nothing by default (permissions: {})');
  }
  for (const [name, job] of Object.entries(workflow.jobs ?? {})) {
    const steps = job.steps ?? [];
    // 2. No token left in .git/config for later steps to read.
    for (const s of steps) {
      if (s.uses?.startsWith('actions/checkout@') && s.with?.['persist-credentials'] !== false) {
        problems.push(`${name}: actions/checkout without persist-credentials: false`);
      }
    }
    // 3. No secret in a job that runs the build toolchain.
    if (runsToolchain(job)) {
      const exposed = JSON.stringify({ env: job.env, steps, with: job.with, secrets: job.secrets });
      if (/\$\{\{\s*secrets\./.test(exposed) || job.secrets === 'inherit') {
        problems.push(`${name}: runs the build toolchain with a secret in reach`);
      }
      if (job.environment !== undefined) {
        problems.push(
          `${name}: runs the build toolchain in an environment (its secrets are in reach)`,
        );
      }
    }
    // 4. Permissions: declared per job; write access never beside the toolchain;
    //    id-token and attestations only where the assets are attested.
    if (job.permissions === undefined) {
      problems.push(`${name}: declares no permissions`);
    } else if (typeof job.permissions === 'string') {
      problems.push(`${name}: permissions ${job.permissions} (name each one)`);
    } else {
      const granted = Object.entries(job.permissions as Record<string, string>);
      const writes = granted.filter(([, level]) => level === 'write').map(([scope]) => scope);
      if (writes.length > 0 && runsToolchain(job)) {
        problems.push(`${name}: runs the build toolchain with ${writes.join(', ')}: write`);
      }
      const attests = steps.some((s) => s.uses?.startsWith('actions/attest-build-provenance@'));
      for (const scope of WRITE_PERMISSIONS_ONLY_FOR_ATTESTING) {
        if (writes.includes(scope) && !attests) {
          problems.push(`${name}: ${scope}: write without attesting anything`);
        }
      }
    }
    // 5. No event data expanded into a shell script (script injection).
    for (const s of steps) {
      if (s.run && /\$\{\{[^}]*\b(github\.event\.|github\.head_ref|inputs\.)/.test(s.run)) {
        problems.push(`${name}: expands event data or inputs inside run:`);
      }
    }
  }
  return problems;
}
