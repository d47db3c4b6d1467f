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
      '/etc/rick/secrets/x.env: line 1: expected KEY=value; line 2: the text before "=" is not a key (letters, digits and _, not starting with a digit); line 3: A has an unterminated double quote; line 5: A is set twice',
    );
  });

  it('never quotes the text of a line without a valid key: it may be a value', () => {
    // A pasted URL and the second line of a value split across lines.
    const text = 'URL=ok\nhttps://admin:hunter2@db.example.org/?a=b\nPEM="abc\ns3cr3t-tail="\n';
    const error = refusal(() => parseSecrets(text, 'f'));
    expect(error.message).toBe(
      'f: line 2: the text before "=" is not a key (letters, digits and _, not starting with a digit); line 3: PEM has an unterminated double quote; line 4: the text before "=" is not a key (letters, digits and _, not starting with a digit)',
    );
    for (const fragment of ['hunter2', 'admin', 'db.example.org', 's3cr3t', 'abc']) {
      expect(error.message).not.toContain(fragment);
      expect(error.hint ?? '').not.toContain(fragment);
    }
  });

  it('refuses control characters in values (a tab, an escape, a C1 control)', () => {
    const error = refusal(() => parseSecrets('A=x\ty\nB=\u001b[31m\nC=\u0085\n', 'f'));
    expect(error.code).toBe('SECRETS_INSECURE');
    expect(error.message).toBe(
      'f: line 1: A contains a control character; line 2: B contains a control character; line 3: C contains a control character',
    );
  });
});
