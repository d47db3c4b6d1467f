/**
 * PodmanArgs= and the other argument lists of a Quadlet unit, split into
 * words the way quadlet splits them and then read as podman's command line
 * parser (cobra/pflag) reads them. Pure.
 *
 * Splitting follows systemd's rules for command lines (quadlet ports
 * systemd's extract_first_word): words are separated by whitespace; single
 * and double quotes group a word and are removed; a backslash starts a C
 * escape (`\n`, `\t`, `\s` for a space, `\x41`, `\101`, `\u00e9`,
 * `\U0001F600`, `\\`, `\"`, `\'`) also inside quotes. An unknown escape makes
 * quadlet drop the whole line silently, and an empty quoted word (`""`) ends
 * its split, dropping the rest of the line: both are reported as problems,
 * so that what rick judges is never less than what podman might be given.
 *
 * Reading the words follows pflag: `--flag=value`, `--flag value`,
 * `-v/src:/dst`, `-v=/src:/dst`, `-v /src:/dst`, combined short flags
 * (`-dit`, `-tv/src:/dst`), `--bool`, `--bool=false`; slice flags split
 * their value on commas.
 */

export interface SplitResult {
  words: string[];
  /** Why the split is not the one every podman would make; empty when it is. */
  problems: string[];
}

const separators = ' \t\n\r';

/** C escapes as systemd's cunescape_one reads them; undefined for an unknown escape. */
function unescapeOne(text: string, at: number): { length: number; char: string } | undefined {
  const c = text[at];
  const simple: Record<string, string> = {
    a: '\x07',
    b: '\b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
    '\\': '\\',
    '"': '"',
    "'": "'",
    s: ' ',
  };
  if (c === undefined) return undefined;
  if (c in simple) return { length: 1, char: simple[c]! };
  const hex = (n: number): number | undefined => {
    const digits = text.slice(at + 1, at + 1 + n);
    return digits.length === n && /^[0-9a-fA-F]+$/.test(digits)
      ? Number.parseInt(digits, 16)
      : undefined;
  };
  if (c === 'x') {
    const v = hex(2);
    return v === undefined || v === 0 ? undefined : { length: 3, char: String.fromCodePoint(v) };
  }
  if (c === 'u') {
    const v = hex(4);
    return v === undefined || v === 0 ? undefined : { length: 5, char: String.fromCodePoint(v) };
  }
  if (c === 'U') {
    const v = hex(8);
    return v === undefined || v === 0 || v > 0x10ffff
      ? undefined
      : { length: 9, char: String.fromCodePoint(v) };
  }
  if (/[0-7]/.test(c)) {
    const digits = text.slice(at, at + 3);
    if (!/^[0-7]{3}$/.test(digits)) return undefined;
    const v = Number.parseInt(digits, 8);
    return v === 0 || v > 255 ? undefined : { length: 3, char: String.fromCodePoint(v) };
  }
  return undefined;
}

/**
 * Splits an ExecStart-style value as quadlet does for PodmanArgs=, Exec= and
 * GlobalArgs= (relaxed quoting, quotes removed, C escapes applied).
 */
export function splitArgs(value: string): SplitResult {
  const words: string[] = [];
  let i = 0;
  const n = value.length;
  while (i < n) {
    while (i < n && separators.includes(value[i]!)) i++;
    if (i >= n) break;
    let word = '';
    let quoted = false;
    let quote: string | undefined;
    for (; i < n; i++) {
      const c = value[i]!;
      if (quote) {
        if (c === quote) {
          quote = undefined;
        } else if (c === '\\') {
          const e = unescapeOne(value, i + 1);
          if (!e) {
            return {
              words: [],
              problems: [
                i + 1 >= n
                  ? 'ends in a backslash inside quotes'
                  : `unknown escape \\${value[i + 1]} (quadlet drops the whole line)`,
              ],
            };
          }
          word += e.char;
          i += e.length;
        } else {
          word += c;
        }
        continue;
      }
      if (c === "'" || c === '"') {
        quote = c;
        quoted = true;
      } else if (c === '\\') {
        if (i + 1 >= n) break; // relaxed: a trailing backslash is dropped
        const e = unescapeOne(value, i + 1);
        if (!e) {
          return {
            words: [],
            problems: [`unknown escape \\${value[i + 1]} (quadlet drops the whole line)`],
          };
        }
        word += e.char;
        i += e.length;
      } else if (separators.includes(c)) {
        break;
      } else {
        word += c;
      }
    }
    if (word === '') {
      const rest = value.slice(i).trim();
      if (quoted && rest !== '') {
        return {
          words,
          problems: [`an empty quoted word ends quadlet's split and drops ${JSON.stringify(rest)}`],
        };
      }
      break;
    }
    words.push(word);
  }
  return { words, problems: [] };
}

/**
 * Splits a list value as quadlet does for AddCapability=, AddDevice=,
 * Sysctl=, LogOpt=, UIDMap=, GIDMap= (systemd's strv: whitespace separates,
 * quotes group and are removed, backslashes are kept as they are). An
 * unbalanced quote makes quadlet drop the value.
 */
export function splitStrv(value: string): SplitResult {
  const emptyWord = "an empty quoted word ends quadlet's split and drops the rest";
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: string | undefined;
  for (const c of value) {
    if (quote) {
      if (c === quote) quote = undefined;
      else word += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (separators.includes(c)) {
      if (inWord && word === '') return { words, problems: [emptyWord] };
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) return { words: [], problems: ['unbalanced quote (quadlet drops the value)'] };
  if (inWord && word !== '') words.push(word);
  return { words, problems: [] };
}

// ---------------------------------------------------------------------------
// podman's flags

/** How a flag takes its value: `bool` takes none, `slice` splits its value on commas. */
export type FlagType = 'bool' | 'string' | 'array' | 'slice';

export interface FlagSpec {
  type: FlagType;
  short?: string;
}

/**
 * Every flag of `podman run` in podman 5.4 (cmd/podman/common/create.go,
 * netflags.go, containers/run.go), by long name. Aliases podman normalises
 * (`--net`, `--dns-opt`, `--healthcheck-*`) are listed under their own name.
 */
export const podmanRunFlags: Readonly<Record<string, FlagSpec>> = {
  'add-host': { type: 'slice' },
  annotation: { type: 'array' },
  arch: { type: 'string' },
  attach: { type: 'slice', short: 'a' },
  authfile: { type: 'string' },
  'blkio-weight': { type: 'string' },
  'blkio-weight-device': { type: 'array' },
  'cap-add': { type: 'slice' },
  'cap-drop': { type: 'slice' },
  'cgroup-conf': { type: 'slice' },
  'cgroup-parent': { type: 'string' },
  cgroupns: { type: 'string' },
  cgroups: { type: 'string' },
  chrootdirs: { type: 'array' },
  cidfile: { type: 'string' },
  'conmon-pidfile': { type: 'string' },
  'cpu-period': { type: 'string' },
  'cpu-quota': { type: 'string' },
  'cpu-rt-period': { type: 'string' },
  'cpu-rt-runtime': { type: 'string' },
  'cpu-shares': { type: 'string', short: 'c' },
  cpus: { type: 'string' },
  'cpuset-cpus': { type: 'string' },
  'cpuset-mems': { type: 'string' },
  'decryption-key': { type: 'array' },
  detach: { type: 'bool', short: 'd' },
  'detach-keys': { type: 'string' },
  device: { type: 'array' },
  'device-cgroup-rule': { type: 'slice' },
  'device-read-bps': { type: 'array' },
  'device-read-iops': { type: 'array' },
  'device-write-bps': { type: 'array' },
  'device-write-iops': { type: 'array' },
  'disable-content-trust': { type: 'bool' },
  dns: { type: 'slice' },
  'dns-option': { type: 'slice' },
  'dns-opt': { type: 'slice' },
  'dns-search': { type: 'slice' },
  entrypoint: { type: 'string' },
  env: { type: 'array', short: 'e' },
  'env-file': { type: 'array' },
  'env-host': { type: 'bool' },
  'env-merge': { type: 'array' },
  expose: { type: 'slice' },
  gidmap: { type: 'slice' },
  gpus: { type: 'slice' },
  'group-add': { type: 'slice' },
  'group-entry': { type: 'string' },
  'health-cmd': { type: 'string' },
  'health-interval': { type: 'string' },
  'health-log-destination': { type: 'string' },
  'health-max-log-count': { type: 'string' },
  'health-max-log-size': { type: 'string' },
  'health-on-failure': { type: 'string' },
  'health-retries': { type: 'string' },
  'health-start-period': { type: 'string' },
  'health-startup-cmd': { type: 'string' },
  'health-startup-interval': { type: 'string' },
  'health-startup-retries': { type: 'string' },
  'health-startup-success': { type: 'string' },
  'health-startup-timeout': { type: 'string' },
  'health-timeout': { type: 'string' },
  'healthcheck-command': { type: 'string' },
  'healthcheck-interval': { type: 'string' },
  'healthcheck-retries': { type: 'string' },
  'healthcheck-start-period': { type: 'string' },
  'healthcheck-timeout': { type: 'string' },
  help: { type: 'bool' },
  hostname: { type: 'string', short: 'h' },
  'hosts-file': { type: 'string' },
  hostuser: { type: 'slice' },
  'http-proxy': { type: 'bool' },
  'image-volume': { type: 'string' },
  init: { type: 'bool' },
  'init-ctr': { type: 'string' },
  'init-path': { type: 'string' },
  interactive: { type: 'bool', short: 'i' },
  ip: { type: 'string' },
  ip6: { type: 'string' },
  ipc: { type: 'string' },
  'kernel-memory': { type: 'string' },
  label: { type: 'array', short: 'l' },
  'label-file': { type: 'array' },
  'log-driver': { type: 'string' },
  'log-opt': { type: 'array' },
  'mac-address': { type: 'string' },
  memory: { type: 'string', short: 'm' },
  'memory-reservation': { type: 'string' },
  'memory-swap': { type: 'string' },
  'memory-swappiness': { type: 'string' },
  mount: { type: 'array' },
  name: { type: 'string' },
  net: { type: 'array' },
  network: { type: 'array' },
  'network-alias': { type: 'slice' },
  'no-healthcheck': { type: 'bool' },
  'no-hostname': { type: 'bool' },
  'no-hosts': { type: 'bool' },
  'oom-kill-disable': { type: 'bool' },
  'oom-score-adj': { type: 'string' },
  os: { type: 'string' },
  'passwd-entry': { type: 'string' },
  passwd: { type: 'bool' },
  personality: { type: 'string' },
  pid: { type: 'string' },
  pidfile: { type: 'string' },
  'pids-limit': { type: 'string' },
  platform: { type: 'string' },
  pod: { type: 'string' },
  'pod-id-file': { type: 'string' },
  'preserve-fd': { type: 'slice' },
  'preserve-fds': { type: 'string' },
  privileged: { type: 'bool' },
  publish: { type: 'slice', short: 'p' },
  'publish-all': { type: 'bool', short: 'P' },
  pull: { type: 'string' },
  quiet: { type: 'bool', short: 'q' },
  'rdt-class': { type: 'string' },
  'read-only': { type: 'bool' },
  'read-only-tmpfs': { type: 'bool' },
  replace: { type: 'bool' },
  requires: { type: 'slice' },
  restart: { type: 'string' },
  retry: { type: 'string' },
  'retry-delay': { type: 'string' },
  rm: { type: 'bool' },
  rmi: { type: 'bool' },
  rootfs: { type: 'bool' },
  sdnotify: { type: 'string' },
  'seccomp-policy': { type: 'string' },
  secret: { type: 'array' },
  'security-opt': { type: 'array' },
  'shm-size': { type: 'string' },
  'shm-size-systemd': { type: 'string' },
  'sig-proxy': { type: 'bool' },
  'stop-signal': { type: 'string' },
  'stop-timeout': { type: 'string' },
  subgidname: { type: 'string' },
  subuidname: { type: 'string' },
  sysctl: { type: 'slice' },
  systemd: { type: 'string' },
  timeout: { type: 'string' },
  'tls-verify': { type: 'bool' },
  tmpfs: { type: 'array' },
  tty: { type: 'bool', short: 't' },
  tz: { type: 'string' },
  uidmap: { type: 'slice' },
  ulimit: { type: 'slice' },
  umask: { type: 'string' },
  unsetenv: { type: 'array' },
  'unsetenv-all': { type: 'bool' },
  user: { type: 'string', short: 'u' },
  userns: { type: 'string' },
  uts: { type: 'string' },
  variant: { type: 'string' },
  volume: { type: 'array', short: 'v' },
  'volumes-from': { type: 'array' },
  workdir: { type: 'string', short: 'w' },
};

/**
 * Every flag of `podman pod create` in podman 5.4 (cmd/podman/pods/create.go,
 * with the infra container's flags of create.go and the network flags).
 */
export const podmanPodCreateFlags: Readonly<Record<string, FlagSpec>> = {
  ...Object.fromEntries(
    [
      'add-host',
      'blkio-weight',
      'blkio-weight-device',
      'cgroup-parent',
      'cpu-shares',
      'cpus',
      'cpuset-cpus',
      'cpuset-mems',
      'device',
      'device-read-bps',
      'device-write-bps',
      'dns',
      'dns-option',
      'dns-opt',
      'dns-search',
      'gidmap',
      'gpus',
      'help',
      'hostname',
      'hosts-file',
      'ip',
      'ip6',
      'label',
      'label-file',
      'mac-address',
      'memory',
      'memory-swap',
      'net',
      'network',
      'network-alias',
      'no-hostname',
      'no-hosts',
      'pid',
      'publish',
      'restart',
      'security-opt',
      'shm-size',
      'shm-size-systemd',
      'subgidname',
      'subuidname',
      'sysctl',
      'uidmap',
      'userns',
      'uts',
      'volume',
      'volumes-from',
    ].map((name) => [name, podmanRunFlags[name]!]),
  ),
  'exit-policy': { type: 'string' },
  infra: { type: 'bool' },
  'infra-command': { type: 'string' },
  'infra-conmon-pidfile': { type: 'string' },
  'infra-image': { type: 'string' },
  'infra-name': { type: 'string' },
  name: { type: 'string', short: 'n' },
  'pod-id-file': { type: 'string' },
  replace: { type: 'bool' },
  share: { type: 'string' },
  'share-parent': { type: 'bool' },
};

export interface ParsedFlag {
  /** The long name, e.g. `volume` for `-v`. */
  name: string;
  /** The value (`true`/`false` for a bool flag); a slice flag gives one entry per comma part. */
  values: string[];
  /** As written, for messages: `-v/src:/dst`, `--privileged`. */
  written: string;
}

export interface ParsedArgs {
  flags: ParsedFlag[];
  problems: string[];
}

const boolValues = new Set([
  '1',
  't',
  'T',
  'TRUE',
  'true',
  'True',
  '0',
  'f',
  'F',
  'FALSE',
  'false',
  'False',
]);

function sliceValues(value: string): string[] | undefined {
  // pflag reads a slice flag's value as one CSV record; quotes would change its split.
  if (value.includes('"')) return undefined;
  return value === '' ? [] : value.split(',');
}

/**
 * Reads a word list as pflag reads podman's command line, with the flag
 * table given. Positional words, `--`, unknown flags and missing values are
 * problems: in PodmanArgs= a positional word would become the image.
 */
export function parsePodmanFlags(
  words: readonly string[],
  table: Readonly<Record<string, FlagSpec>>,
): ParsedArgs {
  const flags: ParsedFlag[] = [];
  const problems: string[] = [];
  const shorts = new Map<string, string>();
  for (const [name, spec] of Object.entries(table)) if (spec.short) shorts.set(spec.short, name);
  const add = (name: string, spec: FlagSpec, value: string, written: string) => {
    if (spec.type === 'bool') {
      if (!boolValues.has(value)) {
        problems.push(`${written}: ${JSON.stringify(value)} is not a boolean`);
        return;
      }
      flags.push({ name, values: [/^(1|t|true)$/i.test(value) ? 'true' : 'false'], written });
      return;
    }
    if (spec.type === 'slice') {
      const values = sliceValues(value);
      if (!values) {
        problems.push(`${written}: a quote inside a list value`);
        return;
      }
      flags.push({ name, values, written });
      return;
    }
    flags.push({ name, values: [value], written });
  };
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') {
      problems.push('"--" ends the flags: what follows would be read as the image and its command');
      break;
    }
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = eq === -1 ? word.slice(2) : word.slice(2, eq);
      const spec = table[name];
      if (!spec) {
        problems.push(`unknown flag --${name}`);
        continue;
      }
      if (eq !== -1) add(name, spec, word.slice(eq + 1), word);
      else if (spec.type === 'bool') add(name, spec, 'true', word);
      else if (i + 1 < words.length) {
        add(name, spec, words[i + 1]!, `${word} ${words[i + 1]}`);
        i++;
      } else problems.push(`${word} needs a value`);
      continue;
    }
    if (word.startsWith('-') && word.length > 1) {
      let rest = word.slice(1);
      while (rest.length > 0) {
        const letter = rest[0]!;
        const name = shorts.get(letter);
        if (!name) {
          problems.push(`unknown flag -${letter} in ${word}`);
          break;
        }
        const spec = table[name]!;
        if (rest.length > 2 && rest[1] === '=') {
          add(name, spec, rest.slice(2), word);
          rest = '';
        } else if (spec.type === 'bool') {
          add(name, spec, 'true', word);
          rest = rest.slice(1);
        } else if (rest.length > 1) {
          add(name, spec, rest.slice(1), word);
          rest = '';
        } else if (i + 1 < words.length) {
          add(name, spec, words[i + 1]!, `${word} ${words[i + 1]}`);
          i++;
          rest = '';
        } else {
          problems.push(`${word} needs a value`);
          rest = '';
        }
      }
      continue;
    }
    problems.push(
      `${JSON.stringify(word)} is not a flag: podman would read it as the image and what follows as its command`,
    );
  }
  return { flags, problems };
}
