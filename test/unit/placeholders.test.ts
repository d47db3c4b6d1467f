import { describe, expect, it } from 'vitest';
import {
  formatPlaceholder,
  percentEncode,
  scanPlaceholders,
  substitutePlaceholders,
} from '../../src/bundle/placeholders.js';

describe('placeholder tokens', () => {
  it('formats tokens that avoid systemd, shell and Jinja syntax', () => {
    const token = formatPlaceholder({ kind: 'secret', name: 'cache_password', encoding: 'url' });
    expect(token).toBe('@@rick:secret:cache_password:url@@');
    expect(token).not.toMatch(/[%${}]/);
  });

  it('refuses names a kind does not accept', () => {
    expect(() => formatPlaceholder({ kind: 'path', name: '../etc/passwd' })).toThrow(
      /invalid path name/,
    );
    expect(() => formatPlaceholder({ kind: 'secret', name: 'a-b' })).toThrow(/invalid secret name/);
  });

  it('scans well-formed and malformed tokens', () => {
    const text =
      'PodmanArgs=--group-add @@rick:gid:postgres-clients@@ @@rick:host:x@@ @@rick:uid:authentik@@ @@rick:gid:broken';
    const { refs, malformed } = scanPlaceholders(text);
    expect(refs).toEqual([
      { kind: 'gid', name: 'postgres-clients' },
      { kind: 'uid', name: 'authentik' },
    ]);
    expect(malformed).toEqual([
      '@@rick:host:x@@ (unknown placeholder kind "host")',
      '@@rick:gid:broken (unterminated token)',
    ]);
  });

  it('substitutes in one pass and never rescans a substituted value', () => {
    const values: Record<string, string> = {
      'secret:pw': 'p@ss/w:rd @@rick:gid:x@@',
      'gid:pg': '1234',
    };
    const { text, unresolved } = substitutePlaceholders(
      'URL=unix:///s?password=@@rick:secret:pw:url@@ GID=@@rick:gid:pg@@ RAW=@@rick:secret:pw@@ X=@@rick:uid:nobody@@',
      (ref) => values[`${ref.kind}:${ref.name}`],
    );
    expect(text).toBe(
      'URL=unix:///s?password=p%40ss%2Fw%3Ard%20%40%40rick%3Agid%3Ax%40%40 GID=1234 RAW=p@ss/w:rd @@rick:gid:x@@ X=@@rick:uid:nobody@@',
    );
    expect(unresolved).toEqual(['@@rick:uid:nobody@@']);
  });

  it('percent-encodes every reserved character', () => {
    expect(percentEncode("a!'()*~-._ b")).toBe('a%21%27%28%29%2A~-._%20b');
  });
});
