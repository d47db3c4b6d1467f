/**
 * The roff the manual pages are written in: what a description may hold
 * (a leading dot, backslashes, `code`, characters beyond ASCII) comes out as
 * text, never as a request or an escape of roff's.
 */
import { describe, expect, it } from 'vitest';
import { renderManPage } from '../../src/cli/man-page.js';
import { type ProgramReference, valueKindOf } from '../../src/cli/reference.js';

const program: ProgramReference = {
  name: 'demo-prog',
  description: 'Demo things.\n.so /etc/passwd is text here',
  options: [],
  commands: [
    {
      name: 'run',
      aliases: [],
      usage: '[options] <file>',
      summary: 'run a file',
      description: "run a file\n'quoted at the start, C:\\path and `demo-prog run` … done",
      arguments: [
        { name: 'file', required: true, variadic: false, kind: 'file', description: 'the file' },
      ],
      options: [
        {
          flags: '--out <dir>',
          names: ['--out'],
          valueName: 'dir',
          valueKind: 'dir',
          description: 'where (default: ".")',
          required: false,
        },
        {
          flags: '--color [when]',
          names: ['--color'],
          valueName: 'when',
          valueKind: 'word',
          description: 'colour the output',
          required: false,
        },
      ],
      notes: '',
    },
  ],
  exitCodes: [{ code: 0, text: 'success' }],
};

describe('renderManPage', () => {
  const page = renderManPage(program, {
    date: '2026-01-02',
    version: '1.0.0',
    extras: { files: [], seeAlso: [] },
  });
  const lines = page.split('\n');

  it('keeps prose that starts with a dot or a quote from being read as a request', () => {
    expect(lines).toContain('\\&.so /etc/passwd is text here');
    expect(lines.some((l) => l.startsWith("\\&'quoted at the start"))).toBe(true);
    expect(lines.filter((l) => /^\.so\b|^'/.test(l))).toEqual([]);
  });

  it('escapes backslashes and hyphens, sets `code` in bold, and writes non-ASCII as a Unicode escape', () => {
    expect(page).toContain('C:\\epath');
    expect(page).toContain('\\fBdemo\\-prog run\\fR');
    expect(page).toContain('\\[u2026]');
    expect(page).toMatch(/^\\fB\\-\\-out\\fR \\fIdir\\fR$/m);
    // An optional value keeps its brackets.
    expect(page).toMatch(/^\\fB\\-\\-color\\fR \[\\fIwhen\\fR\]$/m);
    expect(/[^\x20-\x7e\n]/.test(page.replace(/\t/g, ''))).toBe(false);
  });

  it('keeps input lines within 80 bytes', () => {
    expect(lines.filter((l) => l.length > 80)).toEqual([]);
  });
});

describe('valueKindOf', () => {
  it('reads what a value is from its name, plurals of variadic arguments included', () => {
    const names = ['bundle.tgz', 'bundle', 'dir', 'bundle-dir', 'dirs', 'file', 'files', 'path'];
    expect(names.map(valueKindOf)).toEqual([
      'bundle',
      'bundle',
      'dir',
      'dir',
      'dir',
      'file',
      'file',
      'file',
    ]);
    const words = ['name@version', 'n', 'semver', 'release', 'text', 'NAME@VERSION'];
    expect(words.map(valueKindOf)).toEqual(words.map(() => 'word'));
  });
});
