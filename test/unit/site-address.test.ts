import { describe, expect, it } from 'vitest';
import {
  normalizeSiteAddress,
  siteBlocks,
  siteTextProblems,
} from '../../src/bundle/site-address.js';
import {
  crossBundleClashes,
  hostCaddyfileClaims,
  judgeSites,
  readSiteClaims,
} from '../../src/host/policy/sites.js';

const normal = (written: string) => {
  const a = normalizeSiteAddress(written);
  return 'problem' in a ? a.problem : a.address;
};

describe('normalizeSiteAddress', () => {
  it.each([
    ['gitea.localhost', 'https://gitea.localhost:443'],
    ['https://gitea.localhost', 'https://gitea.localhost:443'],
    ['GITEA.localhost:443', 'https://gitea.localhost:443'],
    ['HTTPS://Gitea.Localhost.:443', 'https://gitea.localhost:443'],
    ['http://gitea.localhost', 'http://gitea.localhost:80'],
    ['gitea.localhost:80', 'http://gitea.localhost:80'],
    ['gitea.localhost:8443', 'https://gitea.localhost:8443'],
    ['*.example.org', 'https://*.example.org:443'],
    ['shop.example.org/checkout*', 'https://shop.example.org:443/checkout*'],
    ['http://', 'http://:80'],
    [':80', 'http://:80'],
    ['*', 'https://:443'],
    ['[::1]:8080', 'https://[::1]:8080'],
  ])('%s is %s', (written, expected) => {
    expect(normal(written)).toBe(expected);
  });

  it('refuses another scheme and a port out of range', () => {
    expect(normal('ftp://x.org')).toBe('scheme ftp is not http or https');
    expect(normal('x.org:70000')).toBe('has no valid port');
  });
});

describe('siteBlocks', () => {
  it('reads address lists, continued lines and skips snippets and nested blocks', () => {
    const text = [
      '# a comment {',
      '(common) {',
      '\theader X 1',
      '}',
      'a.example.org, http://b.example.org,',
      '\tc.example.org {',
      '\troute {',
      '\t\trespond "}" 200',
      '\t}',
      '}',
      ':80 {',
      '\trespond hi',
      '}',
    ].join('\n');
    expect(siteBlocks(text)).toEqual([
      { line: 5, addresses: ['a.example.org', 'http://b.example.org', 'c.example.org'] },
      { line: 11, addresses: [':80'] },
    ]);
  });

  it('reads a file of one site without braces', () => {
    expect(siteBlocks('a.example.org\nrespond hi\n')).toEqual([
      { line: 1, addresses: ['a.example.org'] },
    ]);
  });
});

describe('siteTextProblems', () => {
  it('names import and {$ENV} with their lines, and nothing in a plain site', () => {
    expect(siteTextProblems('a.org {\n\treverse_proxy 127.0.0.1:80\n}\n')).toEqual([]);
    const problems = siteTextProblems('a.org {\n\timport /etc/rick/secrets/*\n\trespond {$X}\n}\n');
    expect(problems.map((p) => `${p.line} ${p.written}`)).toEqual(['2 import', '3 {$X}']);
  });
});

describe('claims', () => {
  it('one host name in two bundles clashes whatever its spelling; distinct names do not', () => {
    const a = readSiteClaims('a', new Map([['caddy/a.caddy', 'gitea.localhost {\n}\n']]));
    const b = readSiteClaims('b', new Map([['caddy/b.caddy', 'GITEA.localhost:443 {\n}\n']]));
    const c = readSiteClaims('c', new Map([['caddy/c.caddy', 'other.localhost {\n}\n']]));
    expect(crossBundleClashes([...a.claims, ...b.claims, ...c.claims])).toEqual([
      'a/caddy/a.caddy:1 https://gitea.localhost:443 (written gitea.localhost) and b/caddy/b.caddy:1 https://gitea.localhost:443 (written GITEA.localhost:443) both claim the host gitea.localhost',
    ]);
  });

  it('reads the operator’s sites from caddy adapt’s JSON, with their schemes', () => {
    const adapted = JSON.stringify({
      apps: {
        http: {
          servers: {
            srv0: { listen: [':443'], routes: [{ match: [{ host: ['shop.example.org'] }] }] },
            srv1: {
              listen: [':8081'],
              routes: [{ match: [{ host: ['a.test'] }] }],
              automatic_https: { skip: ['a.test'] },
            },
            srv2: { listen: [':80'], routes: [{ handle: [] }] },
          },
        },
      },
    });
    expect(
      hostCaddyfileClaims(adapted, '/etc/caddy/Caddyfile').map((c) => c.address.address),
    ).toEqual(['https://shop.example.org:443', 'http://a.test:8081', 'http://:80']);
  });
});

describe('judgeSites', () => {
  it('takes the last word of root for the served directory, and only with file_server', () => {
    const served = judgeSites(
      new Map([['caddy/a.caddy', 'a.org {\n\troot /api/* /srv/api/\n\tfile_server\n}\n']]),
    );
    expect(served.map((f) => f.need)).toEqual([{ kind: 'paths', value: '/srv/api:ro' }]);
    const unserved = judgeSites(new Map([['caddy/a.caddy', 'a.org {\n\troot * /srv/api\n}\n']]));
    expect(unserved).toEqual([]);
  });

  it('a php_fastcgi unix socket is a host socket too', () => {
    const found = judgeSites(
      new Map([['caddy/a.caddy', 'a.org {\n\tphp_fastcgi unix//run/php/fpm.sock\n}\n']]),
    );
    expect(found.map((f) => f.need)).toEqual([{ kind: 'paths', value: '/run/php/fpm.sock:rw' }]);
  });
});
