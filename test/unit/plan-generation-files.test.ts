import { describe, expect, it } from 'vitest';
import {
  hasSecretTokens,
  moveGenerationPaths,
  renderMasked,
  renderPublic,
} from '../../src/host/generation-files.js';

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
    expect(renderPublic(text, ctx)).toBeUndefined();
  });

  it('re-renders a secret-free file exactly for another generation', () => {
    const unit = 'User=@@rick:uid:app@@\nEnvironmentFile=@@rick:path:env/a.env@@\n';
    expect(hasSecretTokens(unit)).toBe(false);
    expect(renderPublic(unit, ctx)).toBe(
      'User=990\nEnvironmentFile=/var/lib/rick/generations/7/bundles/app/env/a.env\n',
    );
    expect(renderPublic('User=@@rick:uid:nobody@@\n', ctx)).toBeUndefined();
  });

  it('moves a rendered file between generations without touching other numbers', () => {
    const rendered =
      'A=/var/lib/rick/generations/7/bundles/app/env/a.env\nB=%2Fvar%2Flib%2Frick%2Fgenerations%2F7%2Fbundles\nC=/var/lib/rick/generations/70/x\n';
    expect(moveGenerationPaths(rendered, 7, 8)).toBe(
      'A=/var/lib/rick/generations/8/bundles/app/env/a.env\nB=%2Fvar%2Flib%2Frick%2Fgenerations%2F8%2Fbundles\nC=/var/lib/rick/generations/70/x\n',
    );
  });
});
