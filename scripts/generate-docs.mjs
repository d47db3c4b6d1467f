#!/usr/bin/env node
// npm run docs: writes the exit-code table of docs/exit-codes.md from
// src/errors.ts (through dist/), the one source that `--help` prints too.
// test/integration/docs.test.ts fails when the two differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatExitCodesMarkdown } from '../dist/errors.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const page = join(repo, 'docs/exit-codes.md');
const start = '<!-- exit-codes: written by `npm run docs` from src/errors.ts -->\n';
const end = '\n<!-- /exit-codes -->';
const text = readFileSync(page, 'utf8');
const i = text.indexOf(start);
const j = text.indexOf(end, i);
if (i < 0 || j < 0)
  throw new Error(
    `docs/exit-codes.md has no exit-code table between ${start.trim()} and ${end.trim()}`,
  );
writeFileSync(page, text.slice(0, i + start.length) + formatExitCodesMarkdown() + text.slice(j));
console.log('docs: docs/exit-codes.md exit codes written');

// The table of the rules of `restricted` in docs/policy.md, from the rule
// modules' rows (src/host/policy/restricted/rule-docs.ts).
const { formatRulesMarkdown } = await import('../dist/host/policy/restricted/rule-docs.js');
const policyPage = join(repo, 'docs/policy.md');
const rulesStart =
  '<!-- rules: written by `npm run docs` from src/host/policy/restricted/rule-docs.ts -->\n';
const rulesEnd = '\n<!-- /rules -->';
const policy = readFileSync(policyPage, 'utf8');
const k = policy.indexOf(rulesStart);
const l = policy.indexOf(rulesEnd, k);
if (k < 0 || l < 0)
  throw new Error(
    `docs/policy.md has no rule table between ${rulesStart.trim()} and ${rulesEnd.trim()}`,
  );
writeFileSync(
  policyPage,
  policy.slice(0, k + rulesStart.length) + formatRulesMarkdown() + policy.slice(l),
);
console.log('docs: docs/policy.md rules of restricted written');
