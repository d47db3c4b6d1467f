import { describe, expect, it } from 'vitest';
import { decideVersion } from '../../src/host/version-policy.js';

const plain = { allowDowngrade: false };

describe('version policy', () => {
  it('installs on a host without history', () => {
    expect(decideVersion('1.0.0', undefined, plain)).toEqual({ action: 'install' });
    expect(decideVersion('1.0.0', { quarantined: [] }, plain)).toEqual({ action: 'install' });
  });

  it('installs an upgrade and a version equal to the highest after a rollback', () => {
    const state = { installed: '1.0.0', highest: '1.0.0', quarantined: [] };
    expect(decideVersion('1.1.0', state, plain)).toEqual({ action: 'install' });
    const afterDowngrade = { installed: '0.9.0', highest: '1.0.0', quarantined: [] };
    expect(decideVersion('1.0.0', afterDowngrade, plain)).toEqual({ action: 'install' });
  });

  it('treats the installed version as a no-op', () => {
    const decision = decideVersion(
      '1.2.0',
      { installed: '1.2.0', highest: '1.2.0', quarantined: [] },
      plain,
    );
    expect(decision).toEqual({ action: 'noop', reason: 'version 1.2.0 is already installed' });
  });

  it('refuses a downgrade below the highest ever installed unless allowed', () => {
    const state = { installed: '1.0.0', highest: '2.0.0', quarantined: [] };
    const decision = decideVersion('1.5.0', state, plain);
    expect(decision).toMatchObject({
      action: 'refuse',
      code: 'VERSION_REFUSED',
      message: 'version 1.5.0 is lower than 2.0.0, the highest ever installed here',
    });
    expect(decision.action === 'refuse' && decision.hint).toMatch(/--allow-downgrade/);
    expect(decideVersion('1.5.0', state, { allowDowngrade: true })).toEqual({ action: 'install' });
  });

  it('orders pre-releases below their release', () => {
    const state = { installed: '1.1.0', highest: '1.1.0', quarantined: [] };
    expect(decideVersion('1.1.0-rc.1', state, plain)).toMatchObject({ code: 'VERSION_REFUSED' });
  });

  it('refuses a quarantined version even with allowDowngrade, and even when it is the installed one', () => {
    const state = { installed: '1.0.0', highest: '1.1.0', quarantined: ['1.1.0'] };
    for (const allowDowngrade of [false, true]) {
      expect(decideVersion('1.1.0', state, { allowDowngrade })).toMatchObject({
        action: 'refuse',
        code: 'VERSION_QUARANTINED',
      });
    }
    const stuck = { installed: '1.1.0', highest: '1.1.0', quarantined: ['1.1.0'] };
    expect(decideVersion('1.1.0', stuck, plain)).toMatchObject({ code: 'VERSION_QUARANTINED' });
    expect(
      decideVersion('1.1.0', state, { allowDowngrade: false, allowQuarantined: true }),
    ).toEqual({
      action: 'install',
    });
  });

  it('refuses a candidate that is not a semantic version', () => {
    expect(decideVersion('v1', undefined, plain)).toMatchObject({ code: 'VERSION_REFUSED' });
  });
});
