import { describe, expect, it } from 'vitest';
import { isRickError } from '../../src/errors.js';
import { parseSecrets } from '../../src/host/intake/secrets.js';

function refusal(fn: () => unknown) {
  try {
    fn();
  } catch (error) {
    if (isRickError(error)) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('secrets file format', () => {
  it('reads KEY=value lines, comments, export, quotes', () => {
    const text = [
      '# authentik',
      '',
      'A=plain value',
      "export B='single # not a comment'",
      'C="double=with=equals"',
      'D=',
      '  E = spaced  ',
      'F="  kept  "',
    ].join('\n');
    expect([...parseSecrets(`${text}\r\n`, 'f')]).toEqual([
      ['A', 'plain value'],
      ['B', 'single # not a comment'],
      ['C', 'double=with=equals'],
      ['D', ''],
      ['E', 'spaced'],
      ['F', '  kept  '],
    ]);
  });

  it('refuses malformed lines and duplicates, all at once, without echoing values', () => {
    const error = refusal(() =>
      parseSecrets('noequals\n1BAD=x\nA="open\nA=1\nA=2\n', '/etc/rick/secrets/x.env'),
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toBe(
      '/etc/rick/secrets/x.env: line 1: expected KEY=value; line 2: invalid key "1BAD"; line 3: A has an unterminated double quote; line 5: A is set twice',
    );
  });

  it('refuses control characters in values (a tab, an escape, a C1 control)', () => {
    const error = refusal(() => parseSecrets('A=x\ty\nB=\u001b[31m\nC=\u0085\n', 'f'));
    expect(error.code).toBe('SECRETS_INSECURE');
    expect(error.message).toBe(
      'f: line 1: A contains a control character; line 2: B contains a control character; line 3: C contains a control character',
    );
  });
});
