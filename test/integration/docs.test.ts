import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatExitCodesMarkdown } from '../../src/errors.js';

const repo = join(import.meta.dirname, '../..');

describe('README', () => {
  it('shows the exit-code table that --help prints (npm run docs writes it)', async () => {
    const readme = await readFile(join(repo, 'README.md'), 'utf8');
    const table = readme.match(
      /<!-- exit-codes: written by `npm run docs` from src\/errors\.ts -->\n([\s\S]*?)\n<!-- \/exit-codes -->/,
    );
    expect(table, 'README.md lost its exit-code markers').not.toBeNull();
    expect(table?.[1]).toBe(formatExitCodesMarkdown());
  });
});
