import { describe, expect, it } from 'vitest';
import { chooseInstaller, installerVersion } from '../../src/host/installer-version.js';

const installer = (line: string) =>
  Buffer.from(`#!/usr/bin/env node\n${line}\nconst x = 1;\n`, 'latin1');

describe("an installer's version", () => {
  it('is read from its second line', () => {
    expect(installerVersion(installer('// rick-install version 1.4.0'))).toBe('1.4.0');
    expect(installerVersion(installer('// rick-install version 2.0.0-rc.1'))).toBe('2.0.0-rc.1');
  });

  it('is unstated without that line, or when it is not a semantic version', () => {
    expect(installerVersion(installer('const y = 2;'))).toBeUndefined();
    expect(installerVersion(installer('// rick-install version v1'))).toBeUndefined();
    expect(installerVersion(Buffer.from('// rick-install version 1.0.0\n'))).toBeUndefined();
    expect(
      installerVersion(Buffer.from(`#!/usr/bin/env node\n${' '.repeat(300)}\n`)),
    ).toBeUndefined();
  });
});

describe('which installer a new generation keeps', () => {
  it("the bundle's when it is as new as the live one or newer", () => {
    expect(chooseInstaller('demo', '1.2.0', '1.1.0')).toEqual({ take: 'carried' });
    expect(chooseInstaller('demo', '1.2.0', '1.2.0')).toEqual({ take: 'carried' });
    expect(chooseInstaller('demo', '1.2.0', undefined)).toEqual({ take: 'carried' });
    // A live installer that states no version predates versions.
    expect(chooseInstaller('demo', '1.2.0', null)).toEqual({ take: 'carried' });
    expect(chooseInstaller('demo', null, null)).toEqual({ take: 'carried' });
  });

  it('the live one, with a note, when the bundle carries an older one', () => {
    expect(chooseInstaller('demo', '1.1.0', '1.2.0')).toEqual({
      take: 'live',
      note: 'keeping rick-install 1.2.0: demo carries the older 1.1.0, which is not linked',
    });
    expect(chooseInstaller('demo', '1.2.0-rc.1', '1.2.0')).toMatchObject({ take: 'live' });
    expect(chooseInstaller('demo', null, '1.2.0')).toEqual({
      take: 'live',
      note: 'keeping rick-install 1.2.0: demo carries an installer that states no version, which is not linked',
    });
  });

  it('the live one when the bundle carries none, and none when neither has one', () => {
    expect(chooseInstaller('demo', undefined, '1.2.0')).toEqual({ take: 'live' });
    expect(chooseInstaller('demo', undefined, null)).toEqual({ take: 'live' });
    expect(chooseInstaller('demo', undefined, undefined)).toEqual({ take: 'none' });
  });
});
