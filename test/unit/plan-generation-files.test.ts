import { describe, expect, it } from 'vitest';
import { describe as describeError } from '../../src/errors.js';
import {
  hasSecretTokens,
  renderMasked,
  renderRecordedBundle,
} from '../../src/host/generation-files.js';
import { buildTestBundle } from '../helpers/bundle-factory.js';

const facts = { gid: { 'postgres-clients': 4001 }, uid: { app: 990 }, secrets: ['pw'] };
const ctx = { bundle: 'app', generation: 7, facts };

describe('rendering without secrets', () => {
  it('masks secrets, also URL-encoded ones, and resolves the rest', () => {
    const text =
      'PW=@@rick:secret:pw@@\nURL=redis://x?password=@@rick:secret:pw:url@@\nG=@@rick:gid:postgres-clients@@\nF=@@rick:path:env/a.env@@\n';
    expect(renderMasked(text, ctx)).toBe(
      'PW=***secret:pw***\nURL=redis://x?password=***secret:pw***\nG=4001\nF=/var/lib/rick/generations/7/bundles/app/env/a.env\n',
    );
    expect(hasSecretTokens(text)).toBe(true);
  });
});

describe('rendering a recorded bundle again', () => {
  const { manifest } = buildTestBundle({
    name: 'app',
    files: [
      {
        path: 'quadlet/app.container',
        content:
          '[Container]\nImage=x\nUser=@@rick:uid:app@@\nEnvironmentFile=@@rick:path:env/a.env@@\n',
      },
      {
        path: 'env/a.env',
        content:
          'PW=@@rick:secret:pw@@\nURL=redis://x?password=@@rick:secret:pw:url@@\nDIR=/var/lib/rick/generations/7/\n',
      },
    ],
  });
  const sources = new Map(
    [
      '[Container]\nImage=x\nUser=@@rick:uid:app@@\nEnvironmentFile=@@rick:path:env/a.env@@\n',
      'PW=@@rick:secret:pw@@\nURL=redis://x?password=@@rick:secret:pw:url@@\nDIR=/var/lib/rick/generations/7/\n',
    ].map((text, i) => [manifest.files[i]!.path, Buffer.from(text)]),
  );
  // A secret whose value holds a generation path: string replacement would rewrite it.
  const secret = 'a/var/lib/rick/generations/7/b';
  const recorded = {
    manifest,
    sources,
    facts: { gid: {}, uid: { app: 990 }, secrets: ['pw'] },
    secrets: new Map([['pw', secret]]),
  };

  it('renders every file, secrets included, for the generation asked, from source alone', () => {
    const eight = renderRecordedBundle(recorded, 8);
    expect(eight.get('quadlet/app.container')?.toString()).toBe(
      '[Container]\nImage=x\nUser=990\nEnvironmentFile=/var/lib/rick/generations/8/bundles/app/env/a.env\n',
    );
    expect(eight.get('env/a.env')?.toString()).toBe(
      `PW=${secret}\nURL=redis://x?password=a%2Fvar%2Flib%2Frick%2Fgenerations%2F7%2Fb\nDIR=/var/lib/rick/generations/7/\n`,
    );
  });

  it('refuses when the record lacks a fact rather than leave a token behind', () => {
    let error: unknown;
    try {
      renderRecordedBundle({ ...recorded, secrets: new Map() }, 8);
    } catch (e) {
      error = e;
    }
    expect(describeError(error)).toContain('env/a.env: @@rick:secret:pw@@');
  });
});
