/**
 * Plain systemd units and Caddy sites in the pure parts: the manifest's
 * rules, the [Install] rules the generator can carry out, and activation
 * planning with plain units in the unit graph beside what quadlet generated
 * (the recorded Authentik dry-run) and with Caddy reloads.
 */
import { describe, expect, it } from 'vitest';
import {
  type ManifestInput,
  parseManifest,
  type Service,
  serviceNameForUnit,
  unitFilePath,
} from '../../src/bundle/manifest.js';
import { checkUnitsAndSites, plainUnitProblems } from '../../src/bundle/plain-units.js';
import {
  formatPlan,
  type GenerationView,
  planActivation,
  type RenderedBundle,
} from '../../src/host/activation/plan.js';
import { parseUnitGraph, withPlainUnits } from '../../src/host/activation/units.js';
import { AUTHENTIK_DRYRUN } from './quadlet-dryrun.fixture.js';

const sha = 'a'.repeat(64);

function manifest(files: string[], services: ManifestInput['services'] = []): ManifestInput {
  const kind = (p: string) => (p.split('/')[0] === 'systemd' ? 'systemd' : p.split('/')[0]!);
  return {
    schemaVersion: 1,
    name: 'demo',
    version: '1.0.0',
    createdAt: '2024-01-01T00:00:00.000Z',
    source: { commit: null },
    requires: { podman: '5.3.0' },
    files: files.map((path) => ({
      path,
      kind: kind(path) as 'quadlet',
      sha256: sha,
      size: 1,
      mode: 0o644,
    })),
    facts: [],
    services,
  };
}

describe('the manifest with plain units and sites', () => {
  it('names the systemd unit of each kind of unit file', () => {
    expect(serviceNameForUnit('backup.timer')).toBe('backup.timer');
    expect(serviceNameForUnit('fix.service')).toBe('fix.service');
    expect(serviceNameForUnit('x.container')).toBe('x.service');
    expect(serviceNameForUnit('x.pod')).toBe('x-pod.service');
    expect(unitFilePath('fix.service')).toBe('systemd/fix.service');
    expect(unitFilePath('x.container')).toBe('quadlet/x.container');
  });

  it('accepts units and sites in their directories, and services of plain units', () => {
    const r = parseManifest(
      manifest(
        ['systemd/fix.service', 'systemd/sweep.timer', 'caddy/demo.caddy'],
        [{ unit: 'sweep.timer', service: 'sweep.timer', checks: [] }],
      ),
    );
    expect(r.ok).toBe(true);
  });

  it('refuses every problem at once: names, templates, services', () => {
    const r = parseManifest(
      manifest(
        [
          'systemd/fix@.service',
          'systemd/nested/x.service',
          'caddy/site.conf',
          'systemd/fix.service',
        ],
        [
          { unit: 'fix.service', service: 'other.service', checks: [] },
          { unit: 'gone.timer', service: 'gone.timer', checks: [] },
        ],
      ),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual([
      {
        path: 'files.0.path',
        message: 'a systemd unit is named <name>.service, .timer, .path or .socket (no templates)',
      },
      {
        path: 'files.1.path',
        message: 'a systemd unit is named <name>.service, .timer, .path or .socket (no templates)',
      },
      { path: 'files.2.path', message: 'a Caddy site is named <name>.caddy' },
      {
        path: 'services.0.service',
        message: 'the service of the plain unit fix.service is fix.service, not other.service',
      },
      {
        path: 'services.1.unit',
        message: 'service unit gone.timer is not a unit file of the bundle',
      },
    ]);
  });

  it('refuses a plain unit and a Quadlet unit that make the same systemd unit, ServiceName= included', () => {
    const parsed = parseManifest(
      manifest([
        'quadlet/app.container',
        'quadlet/web.container',
        'systemd/app.service',
        'systemd/www.service',
      ]),
    );
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const files = new Map([
      ['quadlet/app.container', Buffer.from('[Container]\nImage=x\n')],
      ['quadlet/web.container', Buffer.from('[Container]\nImage=x\n[Service]\n')],
      ['systemd/app.service', Buffer.from('[Service]\nExecStart=/bin/true\n')],
      ['systemd/www.service', Buffer.from('[Service]\nExecStart=/bin/true\n')],
    ]);
    expect(() => checkUnitsAndSites(parsed.manifest, files)).toThrow(
      'bundle demo: systemd/app.service and quadlet/app.container both make app.service',
    );
    files.set('quadlet/web.container', Buffer.from('[Container]\nImage=x\nServiceName=www\n'));
    expect(() => checkUnitsAndSites(parsed.manifest, files)).toThrow(
      'systemd/www.service and quadlet/web.container both make www.service',
    );
  });

  it('refuses a check Host that is not a host name', () => {
    const r = parseManifest(
      manifest(
        ['systemd/fix.service'],
        [
          {
            unit: 'fix.service',
            service: 'fix.service',
            checks: [{ type: 'http', url: 'http://127.0.0.1/', host: 'a b/c', timeoutSec: 5 }],
          },
        ],
      ),
    );
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problems).toEqual([
        { path: 'services.0.checks.0.host', message: 'must be a host name, optionally with :port' },
      ]);
    }
  });
});

describe('[Install] of a plain unit', () => {
  it('takes WantedBy= and RequiredBy= with unit names', () => {
    expect(
      plainUnitProblems(
        'systemd/x.service',
        '[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target valkey.service\nRequiredBy=x.target\n',
      ),
    ).toEqual([]);
  });

  it('names each key and target it cannot carry out, with its line', () => {
    expect(
      plainUnitProblems(
        'systemd/x.service',
        '[Install]\nAlias=y.service\nAlso=z.service\nWantedBy=../etc multi-user.target\nDefaultInstance=a\n',
      ),
    ).toEqual([
      "systemd/x.service:2: [Install] Alias= is not supported (only WantedBy= and RequiredBy=: rick's generator makes those links, nothing else)",
      "systemd/x.service:3: [Install] Also= is not supported (only WantedBy= and RequiredBy=: rick's generator makes those links, nothing else)",
      'systemd/x.service:4: WantedBy=../etc is not a unit name',
      "systemd/x.service:5: [Install] DefaultInstance= is not supported (only WantedBy= and RequiredBy=: rick's generator makes those links, nothing else)",
    ]);
  });
});

// ---------------------------------------------------------------------------
// Planning

const svc = (unit: string, service: string): Service => ({
  unit,
  service,
  activeTimeoutSec: 30,
  checks: [],
});

const services = [
  svc('authentik.pod', 'authentik-pod.service'),
  svc('authentik-server.container', 'authentik-server.service'),
  svc('authentik-worker.container', 'authentik-worker.service'),
];

const fix = (marker: string) =>
  `[Unit]\nDescription=fix ${marker}\nBindsTo=authentik-server.service\nAfter=authentik-server.service\n\n[Service]\nType=oneshot\nExecStart=/bin/true\nRemainAfterExit=yes\n\n[Install]\nWantedBy=authentik-server.service\n`;

interface Release {
  server?: string;
  fix?: string | null;
  site?: string | null;
  fixService?: boolean;
}

function release(generation: number, r: Release = {}): GenerationView {
  const files: Record<string, string> = {
    'quadlet/authentik.pod': '[Pod]\nPodName=authentik\n',
    'quadlet/authentik-server.container': `[Container]\nImage=standin:1\nExec=server ${r.server ?? ''}\n`,
    'quadlet/authentik-worker.container': '[Container]\nImage=standin:1\nExec=worker\n',
  };
  if (r.fix !== null) files['systemd/authentik-fix.service'] = fix(r.fix ?? 'v1');
  if (r.site !== null) files['caddy/authentik.caddy'] = r.site ?? 'auth.example.org {\n}\n';
  const bundle: RenderedBundle = {
    name: 'authentik',
    version: '1.0.0',
    services: [
      ...services,
      ...(r.fix !== null && r.fixService !== false
        ? [svc('authentik-fix.service', 'authentik-fix.service')]
        : []),
    ],
    files: new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)])),
    masked: new Map(Object.entries(files)),
  };
  return { generation, bundles: new Map([['authentik', bundle]]) };
}

function graph(r: Release = {}) {
  return withPlainUnits(
    parseUnitGraph(AUTHENTIK_DRYRUN),
    r.fix === null ? [] : [{ name: 'authentik-fix.service', text: fix(r.fix ?? 'v1') }],
  );
}

describe('planning with plain units and sites', () => {
  it('puts a plain unit in the graph with its dependencies and what its [Install] gives its target', () => {
    const g = graph();
    expect(g.get('authentik-fix.service')).toMatchObject({
      name: 'authentik-fix.service',
      source: 'authentik-fix.service',
      bindsTo: ['authentik-server.service'],
    });
    expect(g.get('authentik-server.service')?.wants).toContain('authentik-fix.service');
    // The generated graph it was given is left as it was.
    expect(parseUnitGraph(AUTHENTIK_DRYRUN).get('authentik-server.service')?.wants).not.toContain(
      'authentik-fix.service',
    );
  });

  it('a container restart brings the unit bound to it, and the gate checks it', () => {
    const plan = planActivation(release(1), release(2, { server: '--debug' }), {
      live: graph(),
      next: graph(),
    });
    expect(plan.restart).toEqual(['authentik-server.service']);
    expect(plan.restarted).toEqual(['authentik-fix.service', 'authentik-server.service']);
    expect(plan.reload).toEqual([]);
  });

  it('a changed plain unit restarts on its own; nothing else does', () => {
    const plan = planActivation(release(1), release(2, { fix: 'v2' }), {
      live: graph(),
      next: graph({ fix: 'v2' }),
    });
    expect(plan.restart).toEqual(['authentik-fix.service']);
    expect(plan.changed).toEqual([
      {
        service: 'authentik-fix.service',
        bundle: 'authentik',
        because: ['systemd/authentik-fix.service'],
      },
    ]);
  });

  it('a removed plain unit stops; a plain unit that is not a service is left to its dependencies', () => {
    const removed = planActivation(release(1), release(2, { fix: null }), {
      live: graph(),
      next: graph({ fix: null }),
    });
    expect(removed.removed).toEqual(['authentik-fix.service']);
    const quiet = planActivation(
      release(1, { fixService: false }),
      release(2, { fix: 'v2', fixService: false }),
      {
        live: graph(),
        next: graph({ fix: 'v2' }),
      },
    );
    expect(quiet.restart).toEqual([]);
  });

  it('a changed, added or removed site reloads Caddy once, and the plan says which', () => {
    const changed = planActivation(
      release(1),
      release(2, { site: 'auth.example.org {\n\trespond 200\n}\n' }),
      {
        live: graph(),
        next: graph(),
      },
    );
    expect(changed.restart).toEqual([]);
    expect(changed.sites).toEqual(['authentik/caddy/authentik.caddy']);
    expect(changed.reload).toEqual(['caddy.service']);
    expect(formatPlan(changed)).toContain(
      'reload  caddy.service (authentik/caddy/authentik.caddy changed)\n',
    );
    expect(planActivation(release(1, { site: null }), release(2), {}).reload).toEqual([
      'caddy.service',
    ]);
    expect(planActivation(release(1), release(2, { site: null }), {}).reload).toEqual([
      'caddy.service',
    ]);
    expect(planActivation(release(1), release(2), {}).reload).toEqual([]);
  });
});
