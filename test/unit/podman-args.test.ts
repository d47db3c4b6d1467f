/**
 * PodmanArgs= split as quadlet splits it (systemd's command-line quoting),
 * then read as podman's flag parser reads it; unit files read as quadlet
 * reads them. The expected words are what quadlet 5.4 hands podman.
 */
import { describe, expect, it } from 'vitest';
import {
  parsePodmanFlags,
  podmanPodCreateFlags,
  podmanRunFlags,
  splitArgs,
  splitStrv,
} from '../../src/bundle/podman-args.js';
import { dropInDirs, lookupAll, lookupLast, readQuadletUnits } from '../../src/bundle/unit-file.js';

describe('splitArgs (systemd quoting, as quadlet splits PodmanArgs=)', () => {
  it.each([
    ['plain words, any whitespace between', '--a  b\t--c', ['--a', 'b', '--c']],
    ['double quotes group and are removed', '--label "a b" x', ['--label', 'a b', 'x']],
    ['single quotes group and are removed', "--label 'a b'", ['--label', 'a b']],
    ['quotes inside a word join its parts', '--volume="/a b":/c', ['--volume=/a b:/c']],
    ['C escapes outside quotes', '--volume=\\x2fetc:/e', ['--volume=/etc:/e']],
    ['C escapes inside double quotes', '"a\\tb"', ['a\tb']],
    ['escapes are applied inside single quotes too', "'a\\x41'", ['aA']],
    ['\\s is a space', 'a\\sb', ['a b']],
    ['octal escape', '\\101', ['A']],
    ['\\u and \\U escapes', '\\u00e9\\U0001F600', ['é😀']],
    ['an escaped quote is a quote', '\\"x\\"', ['"x"']],
    ['an escaped backslash', 'a\\\\b', ['a\\b']],
    ['a trailing backslash is dropped', 'a b\\', ['a', 'b']],
    ['an unbalanced quote ends the word', '--label "a b', ['--label', 'a b']],
    ['empty value', '', []],
  ])('%s', (_name, value, words) => {
    expect(splitArgs(value)).toEqual({ words, problems: [] });
  });

  it('refuses an unknown escape, which makes quadlet drop the whole line', () => {
    expect(splitArgs('--privileged \\q')).toEqual({
      words: [],
      problems: ['unknown escape \\q (quadlet drops the whole line)'],
    });
  });

  it('refuses \\x00, which quadlet cannot unescape', () => {
    expect(splitArgs('a\\x00').problems).toEqual([
      'unknown escape \\x (quadlet drops the whole line)',
    ]);
  });

  it('refuses an empty quoted word, at which quadlet stops splitting and drops the rest', () => {
    expect(splitArgs('--env "" --privileged')).toEqual({
      words: ['--env'],
      problems: [`an empty quoted word ends quadlet's split and drops "--privileged"`],
    });
  });
});

describe('splitStrv (AddCapability=, AddDevice=, Sysctl=)', () => {
  it('splits on whitespace, removes quotes, keeps backslashes', () => {
    expect(splitStrv('SYS_ADMIN "NET_ADMIN" a\\x41')).toEqual({
      words: ['SYS_ADMIN', 'NET_ADMIN', 'a\\x41'],
      problems: [],
    });
  });
  it('refuses an unbalanced quote', () => {
    expect(splitStrv('"SYS_ADMIN').problems).toEqual([
      'unbalanced quote (quadlet drops the value)',
    ]);
  });
});

describe('parsePodmanFlags (pflag, with podman run 5.4 flags)', () => {
  const parse = (words: string[]) => parsePodmanFlags(words, podmanRunFlags);
  it('--flag=value and --flag value', () => {
    expect(parse(['--volume=/a:/b', '--volume', '/c:/d']).flags.map((f) => f.values)).toEqual([
      ['/a:/b'],
      ['/c:/d'],
    ]);
  });
  it('a value flag takes the next word even when it starts with a dash', () => {
    expect(parse(['--env', '-x']).flags).toEqual([
      { name: 'env', values: ['-x'], written: '--env -x' },
    ]);
  });
  it('short flags: attached, with =, separate, combined', () => {
    expect(
      parse(['-v/:/h', '-v=/a:/b', '-v', '/c:/d', '-dtv/e:/f']).flags.map((f) => [
        f.name,
        f.values,
      ]),
    ).toEqual([
      ['volume', ['/:/h']],
      ['volume', ['/a:/b']],
      ['volume', ['/c:/d']],
      ['detach', ['true']],
      ['tty', ['true']],
      ['volume', ['/e:/f']],
    ]);
  });
  it('bools: bare is true, =false is false, a bool never takes the next word', () => {
    const parsed = parse(['--privileged=false', '--rm', '--read-only=True']);
    expect(parsed.flags.map((f) => [f.name, f.values[0]])).toEqual([
      ['privileged', 'false'],
      ['rm', 'true'],
      ['read-only', 'true'],
    ]);
    expect(parse(['--privileged', 'true']).problems[0]).toMatch(/"true" is not a flag/);
  });
  it('slice flags split their value on commas', () => {
    expect(parse(['--cap-add=sys_admin,net_admin']).flags[0]?.values).toEqual([
      'sys_admin',
      'net_admin',
    ]);
  });
  it('refuses unknown flags, positional words, "--" and a missing value', () => {
    expect(parse(['--frobnicate']).problems).toEqual(['unknown flag --frobnicate']);
    expect(parse(['-Z']).problems).toEqual(['unknown flag -Z in -Z']);
    expect(parse(['alpine']).problems[0]).toMatch(
      /"alpine" is not a flag: podman would read it as the image/,
    );
    expect(parse(['--', '--privileged']).problems[0]).toMatch(/"--" ends the flags/);
    expect(parse(['--volume']).problems).toEqual(['--volume needs a value']);
  });
  it('pod create has its own flags', () => {
    expect(
      parsePodmanFlags(['--infra-name=x', '--privileged'], podmanPodCreateFlags).problems,
    ).toEqual(['unknown flag --privileged']);
  });
});

describe('unit files as quadlet reads them', () => {
  it('joins continuation lines without a separator and skips comments inside them', () => {
    const { units } = readQuadletUnits(
      new Map([
        ['a.container', '[Container]\nPodmanArgs=--volume \\\n# note\n  /etc:/e\nImage=x\n'],
      ]),
    );
    expect(lookupAll(units[0]!, 'Container', 'PodmanArgs').map((l) => [l.value, l.source])).toEqual(
      [['--volume /etc:/e', 'a.container:2']],
    );
  });
  it('an empty assignment clears a list key; a single key takes the last value without quotes', () => {
    const { units } = readQuadletUnits(
      new Map([
        ['a.container', '[Container]\nVolume=/a:/a\nVolume=\nVolume=/b:/b\nUser="1"\nUser=2 \n'],
      ]),
    );
    expect(lookupAll(units[0]!, 'Container', 'Volume').map((l) => l.value)).toEqual(['/b:/b']);
    expect(lookupLast(units[0]!, 'Container', 'User')?.value).toBe('2');
  });
  it('merges drop-ins in file-name order, the most specific directory winning a name', () => {
    const files = new Map([
      ['web-app.container', '[Container]\nImage=x\n'],
      ['container.d/10-all.conf', '[Container]\nVolume=/all:/all\n'],
      ['web-.container.d/10-all.conf', '[Container]\nVolume=/web:/web\n'],
      ['web-app.container.d/20-own.conf', '[Container]\nVolume=/own:/own\n'],
      ['other.container.d/30.conf', '[Container]\nVolume=/other:/other\n'],
    ]);
    const { units } = readQuadletUnits(files);
    expect(units.map((u) => u.name)).toEqual(['web-app.container']);
    expect(lookupAll(units[0]!, 'Container', 'Volume').map((l) => l.value)).toEqual([
      '/web:/web',
      '/own:/own',
    ]);
  });
  it('lists drop-in directories most specific first', () => {
    expect(dropInDirs('a-b-c.container')).toEqual([
      'a-b-c.container.d',
      'a-b-.container.d',
      'a-.container.d',
      'container.d',
    ]);
  });
});
