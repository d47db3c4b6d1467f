import { describe, expect, it } from 'vitest';
import {
  formatDefinitionProblems,
  mergeVariables,
  outputName,
  parseBundleDefinition,
  parseVariablesFile,
  resolveVariables,
} from '../../src/build/definition.js';

const good = {
  name: 'demo',
  variables: { image: 'x' },
  files: { quadlet: ['quadlet/demo.container.j2', 'quadlet/demo.pod'] },
  services: [{ unit: 'demo.container' }],
};

describe('bundle definition', () => {
  it('applies defaults', () => {
    const parsed = parseBundleDefinition(good);
    expect(parsed.ok && parsed.definition.files.env).toEqual([]);
    expect(parsed.ok && parsed.definition.services[0]?.checks).toEqual([]);
  });

  it('reports every problem at once as path: message', () => {
    const parsed = parseBundleDefinition({
      name: 'Bad Name',
      variables: { 'not-ok': 1, gid: 2 },
      files: { quadlet: ['quadlet/x.service', 'a/x.container', 'b/x.container'], extra: 1 },
      services: [
        {
          unit: 'nope.container',
          checks: [{ type: 'http', url: 'https://127.0.0.1/', timeoutSec: 1 }],
        },
      ],
      unknown: true,
    });
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    const text = formatDefinitionProblems(parsed.problems);
    expect(text).toContain('name: must be lowercase letters, digits and dashes');
    expect(text).toContain('variables.not-ok: variable names are letters, digits and _');
    expect(text).toMatch(/files\.quadlet\.0: must be a Quadlet unit/);
    expect(text).toMatch(/files: Unrecognized key: "extra"/);
    expect(text).toMatch(/\(root\): Unrecognized key: "unknown"/);
    expect(text).toMatch(/services\.0\.checks\.0\.url: must be an http:\/\/ URL on loopback/);
    expect(parsed.problems.length).toBeGreaterThanOrEqual(6);
  });

  it('refuses duplicate outputs, services without a unit and reserved variable names', () => {
    const parsed = parseBundleDefinition({
      ...good,
      variables: { gid: 1 },
      files: { quadlet: ['a/x.container', 'b/x.container.j2'] },
      services: [{ unit: 'y.container' }],
    });
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(formatDefinitionProblems(parsed.problems)).toBe(
      "variables.gid: gid is provided by rick and cannot be redefined; files.quadlet.1: renders to the same file as a/x.container; services.0.unit: y.container is not one of the bundle's quadlet or systemd files",
    );
  });

  it('names outputs by the template base name without .j2', () => {
    expect(outputName('quadlet/authentik.pod.j2')).toBe('authentik.pod');
    expect(outputName('env/authentik.env')).toBe('authentik.env');
  });
});

describe('variables', () => {
  it('later vars files override earlier ones and the defaults', () => {
    expect(mergeVariables({ a: 1, b: 1, c: { x: 1 } }, [{ b: 2 }, { b: 3, c: { y: 2 } }])).toEqual({
      a: 1,
      b: 3,
      c: { y: 2 },
    });
  });

  it('vars files must be mappings of variable names', () => {
    expect(parseVariablesFile(null)).toEqual({ ok: true, variables: {} });
    const bad = parseVariablesFile(['a']);
    expect(bad.ok).toBe(false);
    expect(parseVariablesFile({ 'a b': 1 }).ok).toBe(false);
  });

  it('resolves variables that refer to others, and refuses cycles', () => {
    const render = (src: string, ctx: Record<string, unknown>) =>
      src.replace(/\{\{ (\w+) \}\}/g, (_, n: string) => String(ctx[n]));
    expect(
      resolveVariables({ home: '/srv', logs: '{{ home }}/logs', x: '{{ logs }}/x' }, render),
    ).toEqual({
      home: '/srv',
      logs: '/srv/logs',
      x: '/srv/logs/x',
    });
    expect(() => resolveVariables({ a: '{{ b }}', b: '{{ a }}' }, render)).toThrow(
      /variables refer to each other in a cycle: a, b/,
    );
  });
});
