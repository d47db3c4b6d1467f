import { describe, expect, it } from 'vitest';
import type { Service } from '../../src/bundle/manifest.js';
import {
  formatPlan,
  type GenerationView,
  planActivation,
  type RenderedBundle,
} from '../../src/host/activation/plan.js';
import { parseUnitGraph, type UnitNode } from '../../src/host/activation/units.js';
import { AUTHENTIK_DRYRUN, IMAGE_UNIT_DRYRUN } from './quadlet-dryrun.fixture.js';

const svc = (unit: string, service: string): Service => ({
  unit,
  service,
  activeTimeoutSec: 30,
  checks: [],
});

function bundle(
  generation: number,
  name: string,
  files: Record<string, string>,
  services: Service[],
  masked: Record<string, string> = {},
): RenderedBundle {
  const g = `/var/lib/rick/generations/${generation}/bundles/${name}`;
  const text = (v: string) => v.replaceAll('@G@', g);
  return {
    name,
    version: '1.0.0',
    services,
    files: new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(text(v))])),
    masked: new Map(Object.entries(files).map(([k, v]) => [k, text(masked[k] ?? v)])),
  };
}

const view = (generation: number, ...bundles: RenderedBundle[]): GenerationView => ({
  generation,
  bundles: new Map(bundles.map((b) => [b.name, b])),
});

// ---------------------------------------------------------------------------
// Authentik: a pod and two containers, as quadlet generates them.

/** As the bundle has them: the server answers the HTTP check, the worker none. */
const authentikServices = [
  svc('authentik.pod', 'authentik-pod.service'),
  {
    ...svc('authentik-server.container', 'authentik-server.service'),
    checks: [
      {
        type: 'http' as const,
        url: 'http://127.0.0.1:9000/-/health/live/',
        timeoutSec: 300,
        intervalSec: 5,
      },
    ],
  },
  svc('authentik-worker.container', 'authentik-worker.service'),
];

const ROLLING_WHY =
  'each waits for the one before, so authentik-pod.service is never empty and keeps running: podman stops a pod when its last container exits, --exit-policy=stop';

function container(role: string, image: string): string {
  return `[Unit]\nRequires=authentik-pod.service\n[Container]\nImage=${image}\nPod=authentik.pod\nExec=${role}\nEnvironmentFile=@G@/env/authentik.env\n`;
}

interface AuthentikRelease {
  server?: string;
  worker?: string;
  env?: string;
  pod?: string;
}

function authentikFiles(r: AuthentikRelease = {}): Record<string, string> {
  return {
    'quadlet/authentik.pod': r.pod ?? '[Pod]\nPodName=authentik\n',
    'quadlet/authentik-server.container': container('server', r.server ?? 'standin:1.0.0'),
    'quadlet/authentik-worker.container': container('worker', r.worker ?? 'standin:1.0.0'),
    'env/authentik.env': r.env ?? 'AUTHENTIK_REDIS__DB=1\n',
  };
}

/** The recorded generated units, with each container's image as the release has it. */
function authentikGraph(r: AuthentikRelease = {}) {
  const graph = parseUnitGraph(AUTHENTIK_DRYRUN);
  for (const [role, image] of [
    ['server', r.server],
    ['worker', r.worker],
  ] as const) {
    const node = graph.get(`authentik-${role}.service`)!;
    node.image = { ...node.image!, image: image ?? 'standin:1.0.0' };
  }
  return graph;
}

function authentik(generation: number, r: AuthentikRelease = {}) {
  return {
    view: view(generation, bundle(generation, 'authentik', authentikFiles(r), authentikServices)),
    graph: authentikGraph(r),
  };
}

describe('parseUnitGraph: the units quadlet generates', () => {
  it('reads BindsTo=, Requires=, Wants= and the exit policy of a pod and its containers', () => {
    const graph = parseUnitGraph(AUTHENTIK_DRYRUN);
    expect([...graph.keys()].sort()).toEqual([
      'authentik-pod.service',
      'authentik-server.service',
      'authentik-worker.service',
    ]);
    const server = graph.get('authentik-server.service')!;
    expect(server).toMatchObject({
      kind: 'container',
      source: 'authentik-server.container',
      bindsTo: ['authentik-pod.service'],
      requires: ['authentik-pod.service'],
      image: {
        image: 'localhost:5000/authentik-standin:1.0.0',
        policy: 'missing',
        options: [],
      },
    });
    expect(server.after).toContain('authentik-pod.service');
    const pod = graph.get('authentik-pod.service')!;
    expect(pod).toMatchObject({ kind: 'pod', exitPolicy: 'stop', image: undefined });
    expect(pod.wants).toEqual([
      'network-online.target',
      'authentik-server.service',
      'authentik-worker.service',
    ]);
  });

  it('resolves Image=x.image through the image unit, and reads an exit policy given in PodmanArgs', () => {
    const graph = parseUnitGraph(IMAGE_UNIT_DRYRUN);
    expect(graph.get('c.service')).toMatchObject({
      imageUnit: 'foo.image',
      image: undefined,
      requires: ['foo-image.service'],
      bindsTo: ['p-pod.service'],
    });
    expect(graph.get('foo-image.service')).toMatchObject({
      kind: 'image',
      image: {
        image: 'quay.io/x/y:2',
        policy: 'always',
        options: ['--authfile', '/etc/auth.json', '--tls-verify=false'],
      },
    });
    expect(graph.get('p-pod.service')?.exitPolicy).toBe('continue');
  });

  it('reads Pull= as podman does: never pulls nothing, unknown keys are left out', () => {
    const text = (pull: string) =>
      `---a.service---\n[X-Container]\nImage=x:1\nPull=${pull}\n[Unit]\nSourcePath=/u/a.container\n`;
    expect(parseUnitGraph(text('never')).get('a.service')?.image).toBeUndefined();
    expect(parseUnitGraph(text('always')).get('a.service')?.image?.policy).toBe('always');
    expect(parseUnitGraph(text('newer')).get('a.service')?.image?.policy).toBe('newer');
    expect(parseUnitGraph(text('missing')).get('a.service')?.image).toMatchObject({
      policy: 'missing',
      source: 'Pull=missing',
    });
  });
});

describe('planActivation on the generated units', () => {
  it('a version bump of server and worker restarts them one at a time, the pod kept running, and pulls the new image', () => {
    const live = authentik(1);
    const next = authentik(2, { server: 'standin:1.1.0', worker: 'standin:1.1.0' });
    const plan = planActivation(live.view, next.view, { live: live.graph, next: next.graph });
    // The worker first, the server (the one with the HTTP check) last, each its own systemctl run.
    expect(plan.steps).toEqual([['authentik-worker.service'], ['authentik-server.service']]);
    expect(plan.restart).toEqual(['authentik-worker.service', 'authentik-server.service']);
    expect(plan.jobs).toEqual([
      {
        unit: 'authentik-worker.service',
        verb: 'restart',
        brings: [],
        because: ['quadlet/authentik-worker.container'],
        forPod: false,
        rollingPod: 'authentik-pod.service',
      },
      {
        unit: 'authentik-server.service',
        verb: 'restart',
        brings: [],
        because: ['quadlet/authentik-server.container'],
        forPod: false,
        rollingPod: 'authentik-pod.service',
      },
    ]);
    expect(plan.restarted).toEqual(['authentik-server.service', 'authentik-worker.service']);
    expect(plan.unchanged).toEqual(['authentik-pod.service']);
    expect(plan.images).toEqual([
      {
        image: 'standin:1.1.0',
        policy: 'missing',
        options: [],
        source: 'Image=',
        units: ['authentik-server.service', 'authentik-worker.service'],
      },
    ]);
    const text = formatPlan(plan);
    expect(text.split('\n')).toEqual([
      `restart authentik-worker.service, then authentik-server.service, one at a time (quadlet/authentik-worker.container, quadlet/authentik-server.container changed; ${ROLLING_WHY})`,
      'keep    authentik-pod.service (unchanged)',
      'pull    standin:1.1.0 (Pull=missing; for authentik-server.service, authentik-worker.service)',
      '',
    ]);
    expect(formatPlan(plan, { offline: true })).toContain(
      'would restart authentik-worker.service, then authentik-server.service, one at a time (',
    );
    // An offline tree pulls nothing: no pull line, not even a "would pull".
    expect(formatPlan(plan, { offline: true })).not.toMatch(/pull/);
  });

  it('an env-only change and a rotated secret restart the containers one at a time too', () => {
    const live = authentik(1);
    const envOnly = authentik(2, { env: 'AUTHENTIK_REDIS__DB=2\n' });
    const plan = planActivation(live.view, envOnly.view, { live: live.graph, next: envOnly.graph });
    expect(plan.steps).toEqual([['authentik-worker.service'], ['authentik-server.service']]);
    expect(plan.jobs.map((j) => j.because)).toEqual([['env/authentik.env'], ['env/authentik.env']]);
    expect(formatPlan(plan)).toContain(
      `restart authentik-worker.service, then authentik-server.service, one at a time (env/authentik.env changed; ${ROLLING_WHY})`,
    );

    const masked = { 'env/authentik.env': 'PW=***secret:pw***\n' };
    const before = view(
      1,
      bundle(1, 'authentik', authentikFiles({ env: 'PW=a\n' }), authentikServices, masked),
    );
    const after = view(
      2,
      bundle(2, 'authentik', authentikFiles({ env: 'PW=b\n' }), authentikServices, masked),
    );
    const rotated = planActivation(before, after, { live: live.graph, next: live.graph });
    expect(rotated.steps).toEqual([['authentik-worker.service'], ['authentik-server.service']]);
    expect(rotated.unchanged).toEqual(['authentik-pod.service']);
    expect(rotated.secretOnlyChanges).toEqual(['authentik/env/authentik.env']);
    // The image did not change: it is made present only if it is missing.
    expect(rotated.images.map((i) => [i.image, i.policy])).toEqual([['standin:1.0.0', 'missing']]);
  });

  it('the order of a rolling restart follows After= first, then the ones without checks, then by name', () => {
    const live = authentik(1);
    const bump = { server: 'standin:1.1.0', worker: 'standin:1.1.0' };
    // The worker ordered after the server: the server restarts first although it serves.
    const after = authentik(2, bump);
    after.graph.get('authentik-worker.service')!.after.push('authentik-server.service');
    const liveAfter = authentik(1);
    liveAfter.graph.get('authentik-worker.service')!.after.push('authentik-server.service');
    expect(
      planActivation(liveAfter.view, after.view, { live: liveAfter.graph, next: after.graph })
        .steps,
    ).toEqual([['authentik-server.service'], ['authentik-worker.service']]);
    // Neither with a check: by name.
    const plain = authentikServices.map((s) => ({ ...s, checks: [] }));
    const files = (r: AuthentikRelease) => authentikFiles(r);
    const plan = planActivation(
      view(1, bundle(1, 'authentik', files({}), plain)),
      view(2, bundle(2, 'authentik', files(bump), plain)),
      { live: live.graph, next: authentikGraph(bump) },
    );
    expect(plan.steps).toEqual([['authentik-server.service'], ['authentik-worker.service']]);
  });

  it('a container whose restart restarts the other one (Requires=) cannot roll: the pod restarts', () => {
    const bump = { server: 'standin:1.1.0', worker: 'standin:1.1.0' };
    const live = authentik(1);
    const next = authentik(2, bump);
    for (const g of [live.graph, next.graph])
      g.get('authentik-worker.service')!.requires.push('authentik-server.service');
    const plan = planActivation(live.view, next.view, { live: live.graph, next: next.graph });
    expect(plan.steps).toEqual([['authentik-pod.service']]);
    expect(plan.jobs).toEqual([
      {
        unit: 'authentik-pod.service',
        verb: 'restart',
        brings: ['authentik-server.service', 'authentik-worker.service'],
        because: ['quadlet/authentik-server.container', 'quadlet/authentik-worker.container'],
        forPod: true,
      },
    ]);
    expect(formatPlan(plan)).toContain(
      'restart authentik-pod.service (restarts authentik-server.service, authentik-worker.service: quadlet/authentik-server.container, quadlet/authentik-worker.container changed; every running container of the pod restarts or stops, and podman would stop the pod with the last one (--exit-policy=stop))',
    );
  });

  it('a changed .image unit that both containers require restarts them together: the pod restarts', () => {
    const withImage = (r: AuthentikRelease, image: string) => {
      const a = authentik(1, r);
      const graph = a.graph;
      graph.set('standin-image.service', {
        name: 'standin-image.service',
        kind: 'image',
        source: 'standin.image',
        requires: [],
        requisite: [],
        bindsTo: [],
        partOf: [],
        wants: [],
        after: [],
        exitPolicy: undefined,
        image: { image, policy: 'always', options: [], source: 'Image=' },
        imageUnit: undefined,
      });
      for (const c of ['authentik-server.service', 'authentik-worker.service'])
        graph.get(c)!.requires.push('standin-image.service');
      return graph;
    };
    const files = (image: string) => ({
      ...authentikFiles(),
      'quadlet/standin.image': `[Image]\nImage=${image}\n`,
    });
    const plan = planActivation(
      view(1, bundle(1, 'authentik', files('standin:1'), authentikServices)),
      view(2, bundle(2, 'authentik', files('standin:2'), authentikServices)),
      { live: withImage({}, 'standin:1'), next: withImage({}, 'standin:2') },
    );
    expect(plan.steps).toEqual([['authentik-pod.service', 'standin-image.service']]);
    expect(plan.jobs.find((j) => j.unit === 'authentik-pod.service')).toMatchObject({
      forPod: true,
    });
  });

  it('one container of the pod changed: only it restarts, the pod and the other keep running', () => {
    const live = authentik(1);
    const next = authentik(2, { worker: 'worker:2' });
    const plan = planActivation(live.view, next.view, { live: live.graph, next: next.graph });
    expect(plan.restart).toEqual(['authentik-worker.service']);
    expect(plan.jobs[0]).toMatchObject({ brings: [], forPod: false });
    expect(plan.unchanged).toEqual(['authentik-pod.service', 'authentik-server.service']);
    expect(plan.images.map((i) => i.image)).toEqual(['worker:2']);
    expect(formatPlan(plan)).toContain(
      'restart authentik-worker.service (quadlet/authentik-worker.container changed)',
    );
  });

  it("a pod whose own unit changed restarts with all its containers, and says it is the pod's change", () => {
    const live = authentik(1);
    const next = authentik(2, { pod: '[Pod]\nPodName=authentik\nShmSize=512m\n' });
    const plan = planActivation(live.view, next.view, { live: live.graph, next: next.graph });
    expect(plan.jobs).toEqual([
      {
        unit: 'authentik-pod.service',
        verb: 'restart',
        brings: ['authentik-server.service', 'authentik-worker.service'],
        because: ['quadlet/authentik.pod'],
        forPod: false,
      },
    ]);
  });

  it('a container added to a running pod starts alone; one removed stops alone', () => {
    const live = authentik(1);
    const files = {
      ...authentikFiles(),
      'quadlet/authentik-extra.container': container('extra', 'extra:1'),
    };
    const services = [
      ...authentikServices,
      svc('authentik-extra.container', 'authentik-extra.service'),
    ];
    const graph = authentikGraph();
    const extra: UnitNode = {
      ...graph.get('authentik-worker.service')!,
      name: 'authentik-extra.service',
      source: 'authentik-extra.container',
      image: { image: 'extra:1', policy: 'missing', options: [], source: 'Image=' },
    };
    graph.set(extra.name, extra);
    graph.get('authentik-pod.service')!.wants.push(extra.name);
    const next = view(2, bundle(2, 'authentik', files, services));
    const plan = planActivation(live.view, next, { live: live.graph, next: graph });
    expect(plan.added).toEqual(['authentik-extra.service']);
    expect(plan.jobs).toEqual([
      {
        unit: 'authentik-extra.service',
        verb: 'start',
        brings: [],
        because: [],
        forPod: false,
      },
    ]);
    expect(formatPlan(plan)).toContain('start   authentik-extra.service (new)');
    expect(plan.images.map((i) => i.image)).toEqual(['extra:1']);

    // And back (the rollback's plan): the extra container stops, nothing restarts.
    const back = planActivation(next, live.view, { live: graph, next: live.graph });
    expect(back.removed).toEqual(['authentik-extra.service']);
    expect(back.restart).toEqual([]);
  });

  it('a container removed while the only other one changes: the pod restarts, or it would stop with them', () => {
    const live = authentik(1);
    const files = authentikFiles({ server: 'standin:1.1.0' });
    delete (files as Record<string, string>)['quadlet/authentik-worker.container'];
    const graph = authentikGraph({ server: 'standin:1.1.0' });
    graph.delete('authentik-worker.service');
    const pod = graph.get('authentik-pod.service')!;
    pod.wants = pod.wants.filter((w) => w !== 'authentik-worker.service');
    const next = view(2, bundle(2, 'authentik', files, authentikServices.slice(0, 2)));
    const plan = planActivation(live.view, next, { live: live.graph, next: graph });
    expect(plan.removed).toEqual(['authentik-worker.service']);
    expect(plan.steps).toEqual([['authentik-pod.service']]);
    expect(plan.jobs[0]).toMatchObject({ brings: ['authentik-server.service'], forPod: true });
    expect(formatPlan(plan).split('\n')[0]).toBe('stop    authentik-worker.service (removed)');
  });

  it('with a third container added or removed, the two that stay still restart one at a time', () => {
    const bump = { server: 'standin:1.1.0', worker: 'standin:1.1.0' };
    const withExtra = (r: AuthentikRelease) => {
      const graph = authentikGraph(r);
      graph.set('authentik-extra.service', {
        ...graph.get('authentik-worker.service')!,
        name: 'authentik-extra.service',
        source: 'authentik-extra.container',
        image: { image: 'extra:1', policy: 'missing', options: [], source: 'Image=' },
      });
      graph.get('authentik-pod.service')!.wants.push('authentik-extra.service');
      return graph;
    };
    const extraView = (generation: number, r: AuthentikRelease) =>
      view(
        generation,
        bundle(
          generation,
          'authentik',
          {
            ...authentikFiles(r),
            'quadlet/authentik-extra.container': container('extra', 'extra:1'),
          },
          [...authentikServices, svc('authentik-extra.container', 'authentik-extra.service')],
        ),
      );
    // Removed: it stops first (the pod keeps the two others), then the two in turn.
    const removed = planActivation(extraView(1, {}), authentik(2, bump).view, {
      live: withExtra({}),
      next: authentikGraph(bump),
    });
    expect(removed.removed).toEqual(['authentik-extra.service']);
    expect(removed.steps).toEqual([['authentik-worker.service'], ['authentik-server.service']]);
    expect(formatPlan(removed).split('\n')[0]).toBe('stop    authentik-extra.service (removed)');
    // Added: it starts in the first run, into the running pod, then the two in turn.
    const added = planActivation(authentik(1).view, extraView(2, bump), {
      live: authentikGraph(),
      next: withExtra(bump),
    });
    expect(added.steps).toEqual([
      ['authentik-extra.service'],
      ['authentik-worker.service'],
      ['authentik-server.service'],
    ]);
    expect(added.jobs[0]).toMatchObject({ unit: 'authentik-extra.service', verb: 'start' });
    expect(added.unchanged).toEqual(['authentik-pod.service']);
  });

  it('a pod that keeps running when its containers exit (--exit-policy=continue) is left alone', () => {
    const graph = parseUnitGraph(IMAGE_UNIT_DRYRUN);
    const files = (tag: string) => ({
      'quadlet/p.pod': '[Pod]\nPodmanArgs=--exit-policy=continue\n',
      'quadlet/c.container': `[Container]\nImage=foo.image\nPod=p.pod\n# ${tag}\n`,
      'quadlet/foo.image': '[Image]\nImage=quay.io/x/y:2\n',
    });
    const services = [svc('p.pod', 'p-pod.service'), svc('c.container', 'c.service')];
    const plan = planActivation(
      view(1, bundle(1, 'b', files('a'), services)),
      view(2, bundle(2, 'b', files('b'), services)),
      { live: graph, next: graph },
    );
    expect(plan.restart).toEqual(['c.service']);
    expect(plan.unchanged).toEqual(['foo-image.service', 'p-pod.service']);
    // The container runs the .image unit's image, which is running: nothing to pull for it.
    expect(plan.images).toEqual([]);
  });

  it('a changed .image unit restarts its image service, which restarts the container that requires it', () => {
    const graph = parseUnitGraph(IMAGE_UNIT_DRYRUN);
    const files = (image: string) => ({
      'quadlet/p.pod': '[Pod]\nPodmanArgs=--exit-policy=continue\n',
      'quadlet/c.container': '[Container]\nImage=foo.image\nPod=p.pod\n',
      'quadlet/foo.image': `[Image]\nImage=${image}\n`,
    });
    const services = [svc('p.pod', 'p-pod.service'), svc('c.container', 'c.service')];
    const plan = planActivation(
      view(1, bundle(1, 'b', files('quay.io/x/y:1'), services)),
      view(2, bundle(2, 'b', files('quay.io/x/y:2'), services)),
      { live: graph, next: graph },
    );
    expect(plan.jobs).toEqual([
      {
        unit: 'foo-image.service',
        verb: 'restart',
        brings: ['c.service'],
        because: ['quadlet/foo.image'],
        forPod: false,
      },
    ]);
    expect(plan.images).toEqual([
      {
        image: 'quay.io/x/y:2',
        policy: 'always',
        options: ['--authfile', '/etc/auth.json', '--tls-verify=false'],
        source: 'Image=',
        units: ['foo-image.service'],
      },
    ]);
  });

  it("Requires= across bundles: a changed unit restarts the other bundle's unit that requires it, in one transaction", () => {
    const node = (name: string, source: string, requires: string[] = []): UnitNode => ({
      name,
      kind: 'container',
      source,
      requires,
      requisite: [],
      bindsTo: [],
      partOf: [],
      wants: [],
      after: requires,
      exitPolicy: undefined,
      image: { image: `${source}:1`, policy: 'missing', options: [], source: 'Image=' },
      imageUnit: undefined,
    });
    const graph = new Map(
      [
        node('db.service', 'db.container'),
        node('app.service', 'app.container', ['db.service']),
        node('web.service', 'web.container'),
      ].map((n) => [n.name, n]),
    );
    const gen = (n: number, dbEnv: string, webEnv: string) =>
      view(
        n,
        bundle(
          n,
          'data',
          { 'quadlet/db.container': 'EnvironmentFile=@G@/env/db.env\n', 'env/db.env': dbEnv },
          [svc('db.container', 'db.service')],
        ),
        bundle(
          n,
          'apps',
          {
            'quadlet/app.container': 'Requires=db.service\n',
            'quadlet/web.container': 'EnvironmentFile=@G@/env/web.env\n',
            'env/web.env': webEnv,
          },
          [svc('app.container', 'app.service'), svc('web.container', 'web.service')],
        ),
      );
    // A rollback across two bundles: both changed units in one `systemctl restart`.
    const plan = planActivation(gen(1, 'A=1\n', 'W=1\n'), gen(2, 'A=2\n', 'W=2\n'), {
      live: graph,
      next: graph,
    });
    expect(plan.restart).toEqual(['db.service', 'web.service']);
    expect(plan.jobs.find((j) => j.unit === 'db.service')?.brings).toEqual(['app.service']);
    expect(plan.restarted).toEqual(['app.service', 'db.service', 'web.service']);
    expect(formatPlan(plan)).toContain(
      'restart db.service (restarts app.service: env/db.env changed)',
    );
    // app.service's image is made present too: it starts again.
    expect(plan.images.map((i) => i.image)).toEqual([
      'app.container:1',
      'db.container:1',
      'web.container:1',
    ]);
  });

  it("without quadlet's units (an offline tree) each changed service restarts alone, nothing pulled", () => {
    const live = authentik(1);
    const next = authentik(2, { server: 'standin:1.1.0', worker: 'standin:1.1.0' });
    const plan = planActivation(live.view, next.view);
    expect(plan.restart).toEqual(['authentik-server.service', 'authentik-worker.service']);
    expect(plan.images).toEqual([]);
  });

  it('a first install starts each pod, which starts its containers', () => {
    const next = authentik(1);
    const plan = planActivation(undefined, next.view, { next: next.graph });
    expect(plan.jobs).toEqual([
      {
        unit: 'authentik-pod.service',
        verb: 'start',
        brings: ['authentik-server.service', 'authentik-worker.service'],
        because: [],
        forPod: false,
      },
    ]);
    expect(formatPlan(plan)).toContain(
      'start   authentik-pod.service (starts authentik-server.service, authentik-worker.service: new)',
    );
  });
});
