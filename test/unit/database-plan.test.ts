import { describe, expect, it } from 'vitest';
import {
  type DatabaseTarget,
  parseCatalog,
  planDatabase,
  planScript,
  targetConflicts,
} from '../../src/host/database/postgresql.js';
import { redactVerifiers, scramVerifier, verifierMatches } from '../../src/host/database/scram.js';
import { joiningContainers, maySearch, socketContainers } from '../../src/host/preflight.js';

const target: DatabaseTarget = {
  bundle: 'gitea',
  database: 'gitea',
  owner: 'gitea',
  secret: 'gitea_db_password',
  password: "it's secret",
};
const fixed = () => 'SCRAM-SHA-256$4096:c2FsdA==$a:b';

describe('planDatabase', () => {
  it('creates the role, then the database it owns with the privileges of the pattern', () => {
    const plan = planDatabase(target, {}, fixed);
    expect(plan.problems).toEqual([]);
    expect(planScript(plan, 'gitea')).toBe(
      [
        'BEGIN;',
        `CREATE ROLE "gitea" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '${fixed()}';`,
        'COMMIT;',
        'CREATE DATABASE "gitea" OWNER "gitea";',
        'GRANT ALL PRIVILEGES ON DATABASE "gitea" TO "gitea";',
        '\\connect gitea',
        'GRANT ALL ON SCHEMA public TO "gitea";',
        '',
      ].join('\n'),
    );
    // The password itself is in no statement.
    expect(planScript(plan, 'gitea')).not.toContain(target.password);
  });

  it('changes nothing when the stored verifier is the password', () => {
    const stored = scramVerifier(target.password);
    const plan = planDatabase(target, {
      role: { password: stored, canLogin: true, superuser: false },
      database: { owner: 'gitea' },
    });
    expect(plan.changes).toEqual([]);
    expect(planScript(plan, 'gitea')).toBe('');
  });

  it('sets the password when the secret changed, and LOGIN when it was missing', () => {
    const plan = planDatabase(
      target,
      {
        role: { password: scramVerifier('old'), canLogin: false, superuser: false },
        database: { owner: 'gitea' },
      },
      fixed,
    );
    expect(plan.role).toEqual([
      'ALTER ROLE "gitea" LOGIN;',
      `ALTER ROLE "gitea" PASSWORD '${fixed()}';`,
    ]);
    expect(plan.database).toEqual([]);
  });

  it('refuses a superuser role and a database of another owner, running nothing', () => {
    const plan = planDatabase(target, {
      role: { password: undefined, canLogin: true, superuser: true },
      database: { owner: 'someone' },
    });
    expect(plan.problems).toEqual([
      'role gitea is a superuser here: rick manages only roles of ordinary privilege',
      'database gitea belongs to role someone, not gitea',
    ]);
    expect(planScript(plan, 'gitea')).toBe('');
  });

  it('refuses two bundles declaring one database or role', () => {
    expect(targetConflicts([target, { ...target, bundle: 'other', database: 'other' }])).toEqual([
      'role gitea is declared by gitea and other',
    ]);
  });

  it('reads the catalog query output', () => {
    const c = parseCatalog('role\tgitea\tSCRAM-SHA-256$x\tt\tf\ndatabase\tgitea\tgitea\tf\tf\n');
    expect(c.roles.get('gitea')).toEqual({
      password: 'SCRAM-SHA-256$x',
      canLogin: true,
      superuser: false,
    });
    expect(c.databases.get('gitea')).toBe('gitea');
  });
});

describe('SCRAM verifiers', () => {
  it('match their password only, and never show in messages', () => {
    const v = scramVerifier('pw');
    expect(verifierMatches(v, 'pw')).toBe(true);
    expect(verifierMatches(v, 'pw2')).toBe(false);
    expect(verifierMatches('md5abc', 'pw')).toBe(false);
    expect(verifierMatches(undefined, 'pw')).toBe(false);
    expect(redactVerifiers(`LINE 1: ALTER ROLE "x" PASSWORD '${v}';`)).toBe(
      `LINE 1: ALTER ROLE "x" PASSWORD 'SCRAM-SHA-256$…';`,
    );
  });
});

describe('pre-flight planning', () => {
  it('finds the containers that join a group, with their uid, gids and mounts', () => {
    const unit = [
      '[Container]',
      'User=990:991',
      'PodmanArgs=--group-add 4001 --group-add=4002 -v /srv/x:/x',
      'Volume=/var/run/postgresql:/var/run/postgresql:Z',
      '',
    ].join('\n');
    const files = new Map([
      ['quadlet/a.container', Buffer.from(unit)],
      ['quadlet/b.container', Buffer.from('[Container]\nUser=5\nVolume=/var/run/postgresql:/p\n')],
    ]);
    expect(joiningContainers(files)).toEqual([
      {
        unit: 'a.container',
        uid: 990,
        gid: 991,
        groups: [4001, 4002],
        mounts: ['/var/run/postgresql', '/srv/x'],
      },
    ]);
  });

  it('checks every container that mounts a socket, one that joins no group too', () => {
    const files = new Map([
      [
        'quadlet/a.container',
        Buffer.from('[Container]\nUser=990:991\nGroupAdd=4001\nVolume=/srv/a:/a\n'),
      ],
      ['quadlet/b.container', Buffer.from('[Container]\nUser=5\nVolume=/var/run/postgresql:/p\n')],
      ['quadlet/c.container', Buffer.from('[Container]\nUser=7:8\nVolume=/var/run/valkey:/v:Z\n')],
      ['quadlet/d.container', Buffer.from('[Container]\nVolume=/var/run/valkey:/v\n')],
    ]);
    const sockets = {
      postgresqlSocketDir: '/var/run/postgresql',
      valkeySocket: '/var/run/valkey/valkey.sock',
    };
    expect(socketContainers(files, sockets)).toEqual([
      { unit: 'b.container', uid: 5, gid: 5, groups: [], mounts: ['/var/run/postgresql'] },
      { unit: 'c.container', uid: 7, gid: 8, groups: [], mounts: ['/var/run/valkey'] },
    ]);
  });

  it('decides search permission as the kernel does: owner, then group, then others', () => {
    const dir = { uid: 100, gid: 4001, mode: 0o770 };
    expect(maySearch(dir, { uid: 990, gid: 990, groups: [4001] })).toBe(true);
    expect(maySearch(dir, { uid: 990, gid: 990, groups: [4002] })).toBe(false);
    expect(maySearch(dir, { uid: 100, gid: 1, groups: [] })).toBe(true);
    // The owner's bits apply to the owner even when the group's would allow more.
    expect(
      maySearch({ uid: 990, gid: 4001, mode: 0o070 }, { uid: 990, gid: 1, groups: [4001] }),
    ).toBe(false);
  });
});
