import { describe, expect, it } from 'vitest';
import {
  basename,
  bool,
  bundlePath,
  dirname,
  gid,
  mandatory,
  quote,
  regexReplace,
  secret,
  toJson,
  uid,
  urlencode,
} from '../../src/build/render-filters.js';

describe('host-fact template functions', () => {
  it('render to placeholder tokens', () => {
    expect(gid('postgres-clients')).toBe('@@rick:gid:postgres-clients@@');
    expect(uid('authentik')).toBe('@@rick:uid:authentik@@');
    expect(secret('db_password')).toBe('@@rick:secret:db_password@@');
    expect(secret('db_password', 'url')).toBe('@@rick:secret:db_password:url@@');
    expect(bundlePath('env/authentik.env')).toBe('@@rick:path:env/authentik.env@@');
  });

  it('refuse names a host could not resolve safely', () => {
    expect(() => gid('a b')).toThrow(/gid\(\): invalid gid name "a b"/);
    expect(() => secret('x-y')).toThrow(/invalid secret name/);
    expect(() => secret('x', 'base64')).toThrow(/unknown encoding "base64"/);
    expect(() => bundlePath('../etc/shadow')).toThrow(/invalid path name/);
    expect(() => uid(42)).toThrow(/takes the user name as a string/);
  });
});

describe('urlencode', () => {
  it('turns a bare secret into its host-encoded :url form', () => {
    expect(urlencode(secret('valkey_password'))).toBe('@@rick:secret:valkey_password:url@@');
  });

  it('encodes text around placeholders as the host encodes values', () => {
    expect(urlencode(`a b&c/${secret('pw')}?${gid('g')}`)).toBe(
      'a%20b%26c%2F@@rick:secret:pw:url@@%3F@@rick:gid:g@@',
    );
    expect(urlencode({ db: 1, password: secret('pw') })).toBe(
      'db=1&password=@@rick:secret:pw:url@@',
    );
  });

  it('refuses to encode an already encoded placeholder twice', () => {
    expect(() => urlencode(secret('pw', 'url'))).toThrow(/already URL-encoded/);
  });
});

describe('Ansible filters', () => {
  it('dirname and basename follow Python os.path', () => {
    expect(dirname('/var/run/valkey/valkey.sock')).toBe('/var/run/valkey');
    expect(dirname('/a')).toBe('/');
    expect(dirname('file')).toBe('');
    expect(dirname('/a//b')).toBe('/a');
    expect(basename('/var/run/valkey/valkey.sock')).toBe('valkey.sock');
    expect(basename('/a/')).toBe('');
  });

  it('quote follows shlex.quote and refuses secrets', () => {
    expect(quote('plain-word_1.2/x')).toBe('plain-word_1.2/x');
    expect(quote('')).toBe("''");
    expect(quote("it's here")).toBe(`'it'"'"'s here'`);
    expect(quote(gid('g'))).toBe('@@rick:gid:g@@');
    expect(() => quote(`--pw=${secret('pw')}`)).toThrow(/quote cannot be applied to a secret/);
  });

  it('bool reads Ansible truthy strings', () => {
    for (const yes of ['yes', 'on', '1', 'true', 'True', true, 1]) expect(bool(yes)).toBe(true);
    for (const no of ['no', 'off', '0', 'false', '', false, 0, null, undefined, 'maybe'])
      expect(bool(no)).toBe(false);
  });

  it('to_json refuses a secret, whose value would need escaping on the host', () => {
    expect(toJson({ a: [1, 'x'] })).toBe('{"a":[1,"x"]}');
    expect(() => toJson({ pw: secret('pw') })).toThrow(/to_json cannot serialise a secret/);
  });

  it('mandatory refuses undefined values with the given message', () => {
    expect(mandatory('x')).toBe('x');
    expect(() => mandatory(undefined)).toThrow(/mandatory variable not defined/);
    expect(() => mandatory(undefined, 'set the image')).toThrow(/set the image/);
  });

  it('regex_replace takes Python back-references', () => {
    expect(regexReplace('2025.10.2', '^(\\d+)\\.(\\d+).*$', '\\1-\\2')).toBe('2025-10');
  });
});
