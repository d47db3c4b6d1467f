import { describe, expect, it } from 'vitest';
import type { Service } from '../../src/bundle/manifest.js';
import { placeholderLegend } from '../../src/commands/plan.js';
import {
  formatPlan,
  type GenerationView,
  planActivation,
  type RenderedBundle,
} from '../../src/host/activation/plan.js';
import { diffGenerations } from '../../src/host/activation/plan-diff.js';

const svc = (unit: string, service: string): Service => ({
  unit,
  service,
  activeTimeoutSec: 30,
  checks: [],
});

function bundle(
  generation: number,
  files: Record<string, string>,
  services: Service[],
  masked: Record<string, string> = {},
  name = 'app',
): RenderedBundle {
  const g = `/var/lib/rick/generations/${generation}/bundles/${name}`;
  const map = new Map(
    Object.entries(files).map(([k, v]) => [k, Buffer.from(v.replaceAll('@G@', g))]),
  );
  return {
    name,
    version: '1.0.0',
    services,
    files: map,
    masked: new Map(
      Object.entries(files).map(([k, v]) => [k, (masked[k] ?? v).replaceAll('@G@', g)]),
    ),
  };
}

const view = (generation: number, ...bundles: RenderedBundle[]): GenerationView => ({
  generation,
  bundles: new Map(bundles.map((b) => [b.name, b])),
});

const unit = 'EnvironmentFile=@G@/env/app.env\nImage=x:1\n';
const services = [svc('app.container', 'app.service'), svc('db.container', 'db.service')];

describe('planActivation', () => {
  it('a unit that differs only by its generation path, with the same env, did not change', () => {
    const files = {
      'quadlet/app.container': unit,
      'quadlet/db.container': 'Image=db\n',
      'env/app.env': 'A=1\n',
    };
    const live = view(1, bundle(1, files, services));
    const next = view(2, bundle(2, files, services));
    const plan = planActivation(live, next);
    expect(plan.restart).toEqual([]);
    expect(plan.unchanged).toEqual(['app.service', 'db.service']);
    expect(diffGenerations(live, next)).toBe('');
    expect(plan.changedFiles).toEqual([]);
  });

  it('a unit whose referenced env file changed did change; others did not', () => {
    const a = {
      'quadlet/app.container': unit,
      'quadlet/db.container': 'Image=db\n',
      'env/app.env': 'A=1\n',
    };
    const b = { ...a, 'env/app.env': 'A=2\n' };
    const [live, nextView] = [view(1, bundle(1, a, services)), view(2, bundle(2, b, services))];
    const plan = planActivation(live, nextView);
    const diff = diffGenerations(live, nextView);
    expect(plan.changed).toEqual([
      { service: 'app.service', bundle: 'app', because: ['env/app.env'] },
    ]);
    expect(plan.restart).toEqual(['app.service']);
    expect(plan.unchanged).toEqual(['db.service']);
    expect(diff).toContain('--- a/app/env/app.env');
    expect(diff).toContain('-A=1');
    expect(diff).toContain('+A=2');
    expect(diff).not.toContain('quadlet/app.container');
  });

  it('new services start, removed services stop, first install starts everything', () => {
    const a = {
      'quadlet/app.container': unit,
      'quadlet/db.container': 'Image=db\n',
      'env/app.env': 'A=1\n',
    };
    const b = {
      'quadlet/app.container': unit,
      'quadlet/web.container': 'Image=web\n',
      'env/app.env': 'A=1\n',
    };
    const next = [svc('app.container', 'app.service'), svc('web.container', 'web.service')];
    const live = view(1, bundle(1, a, services));
    const plan = planActivation(live, view(2, bundle(2, b, next)));
    expect(plan.added).toEqual(['web.service']);
    expect(plan.removed).toEqual(['db.service']);
    expect(plan.restart).toEqual(['web.service']);
    const diff = diffGenerations(live, view(2, bundle(2, b, next)));
    expect(diff).toContain('--- /dev/null');
    expect(diff).toContain('+++ b/app/quadlet/web.container');
    expect(diff).toContain('--- a/app/quadlet/db.container');
    const first = planActivation(undefined, view(1, bundle(1, a, services)));
    expect(first.restart).toEqual(['app.service', 'db.service']);
    expect(first.removed).toEqual([]);
  });

  it('masks secrets in the diff and reports a change of a secret value alone', () => {
    const a = {
      'quadlet/app.container': unit,
      'quadlet/db.container': 'Image=db\n',
      'env/app.env': 'PW=hunter2\n',
    };
    const b = { ...a, 'env/app.env': 'PW=correct-horse\n' };
    const masked = { 'env/app.env': 'PW=***secret:pw***\n' };
    const live = view(1, bundle(1, a, services, masked));
    const plan = planActivation(live, view(2, bundle(2, b, services, masked)));
    expect(plan.restart).toEqual(['app.service']);
    expect(plan.secretOnlyChanges).toEqual(['app/env/app.env']);
    expect(diffGenerations(live, view(2, bundle(2, b, services, masked)))).toBe('');
    const c = { ...a, 'env/app.env': 'PW=correct-horse\nX=1\n' };
    const diff2 = diffGenerations(
      live,
      view(2, bundle(2, c, services, { 'env/app.env': 'PW=***secret:pw***\nX=1\n' })),
    );
    expect(diff2).toContain('+X=1');
    expect(diff2).toContain(' PW=***secret:pw***');
    expect(diff2).not.toMatch(/hunter2|correct-horse/);
  });

  it('calls a change hidden by the masks a secret only when the file holds one', () => {
    // The rendering differs (a uid), its masked rendering does not, and no secret is in it.
    const a = {
      'quadlet/app.container': unit,
      'quadlet/db.container': 'Image=db\n',
      'env/app.env': 'UID=1000\n',
    };
    const b = { ...a, 'env/app.env': 'UID=1001\n' };
    const masked = { 'env/app.env': 'UID=@@rick:uid:app@@\n' };
    const plan = planActivation(
      view(1, bundle(1, a, services, masked)),
      view(2, bundle(2, b, services, masked)),
    );
    expect(plan.secretOnlyChanges).toEqual([]);
    expect(plan.factOnlyChanges).toEqual(['app/env/app.env']);
    const text = formatPlan(plan);
    expect(text).not.toContain('a secret value changed');
    expect(text).toContain('fact    app/env/app.env (a host fact it uses changed)');
  });

  it('explains the placeholders of a diff once, only those it shows', () => {
    const diff = '+PW=***secret:pw***\n+PW2=***secret:pw2***\n';
    expect(placeholderLegend(diff)).toBe(
      'in the diff, ***secret:NAME*** stands for the value of the secret NAME, which plans never show',
    );
    expect(placeholderLegend(`${diff}+U=@@rick:uid:app@@\n`)).toBe(
      'in the diff, ***secret:NAME*** stands for the value of the secret NAME, which plans never show; @@rick:KIND:NAME@@ for a host fact (uid, gid) not known before the install',
    );
    expect(placeholderLegend('+A=1\n')).toBeUndefined();
  });

  it('leaves the services of other bundles alone when only their generation path moved', () => {
    const other = {
      'quadlet/o.container': 'EnvironmentFile=@G@/env/o.env\n',
      'env/o.env': 'O=1\n',
    };
    const oSvc = [svc('o.container', 'o.service')];
    const a = {
      'quadlet/app.container': unit,
      'quadlet/db.container': 'Image=db\n',
      'env/app.env': 'A=1\n',
    };
    const b = { ...a, 'quadlet/db.container': 'Image=db:2\n' };
    const plan = planActivation(
      view(1, bundle(1, a, services), bundle(1, other, oSvc, {}, 'other')),
      view(2, bundle(2, b, services), bundle(2, other, oSvc, {}, 'other')),
    );
    expect(plan.restart).toEqual(['db.service']);
    expect(plan.unchanged).toEqual(['app.service', 'o.service']);
  });
});
