/**
 * The systemd units podman's quadlet generates from a generation's Quadlet
 * files, read as a dependency graph, without I/O. Activation plans on these
 * generated units (what systemd really loads) rather than on the Quadlet
 * sources, so every dependency quadlet adds is seen as systemd sees it:
 *
 * - a `.container` with `Pod=x.pod` gets `BindsTo=` and `After=` x-pod.service;
 * - a `.pod` gets `Wants=` and `Before=` each of its containers, and its
 *   ExecStartPre creates the pod with `--exit-policy=stop` (podman 5.4
 *   hard-codes it; a `PodmanArgs=--exit-policy=…` later on the line wins), so
 *   the pod stops when its last container is gone;
 * - `Image=x.image` becomes `Requires=`/`After=` x-image.service, whose start
 *   pulls the image, and the container runs the `.image` unit's image;
 * - `Requires=`, `After=`, `BindsTo=`, … written in a Quadlet file's [Unit]
 *   are copied as they are.
 *
 * The input is `quadlet -dryrun` output: each unit introduced by a line
 * `---name.service---`, the Quadlet source kept as an `X-<Kind>` section.
 */

/** How podman decides whether to pull a container's image before it runs. */
export type PullPolicy = 'always' | 'missing' | 'newer' | 'never';

/** An image a unit's start needs, and how podman would fetch it. */
export interface ImageNeed {
  /** The image reference, as podman gets it. */
  image: string;
  /** `Pull=` of a `.container` (podman's default `missing`); `always` for a `.image` unit. */
  policy: PullPolicy;
  /** `podman pull` options a `.image` unit sets (`--authfile`, `--tls-verify=…`, …). */
  options: string[];
  /** The key that names it, e.g. `Image=` or `Pull=never`, for the plan. */
  source: string;
}

export type UnitKind = 'container' | 'pod' | 'image' | 'volume' | 'network' | 'kube' | 'build';

export interface UnitNode {
  /** The systemd unit, e.g. `authentik-server.service`. */
  name: string;
  kind: UnitKind | undefined;
  /** The Quadlet file it was generated from (base name), e.g. `authentik-server.container`. */
  source: string | undefined;
  requires: string[];
  requisite: string[];
  bindsTo: string[];
  partOf: string[];
  wants: string[];
  after: string[];
  /** A pod's exit policy: `stop` makes podman stop the pod when its last container exits. */
  exitPolicy: 'stop' | 'continue' | undefined;
  /** The image its start pulls or runs; undefined for units that need none (pods, `.build`). */
  image: ImageNeed | undefined;
  /** A `.container`'s `Image=` naming a `.image` or `.build` unit (resolved through it). */
  imageUnit: string | undefined;
}

export type UnitGraph = ReadonlyMap<string, UnitNode>;

type Sections = Map<string, Array<[string, string]>>;

const DEPENDENCY_KEYS = {
  Requires: 'requires',
  Requisite: 'requisite',
  BindsTo: 'bindsTo',
  PartOf: 'partOf',
  Wants: 'wants',
  After: 'after',
} as const;

const KINDS: Record<string, UnitKind> = {
  'X-Container': 'container',
  'X-Pod': 'pod',
  'X-Image': 'image',
  'X-Volume': 'volume',
  'X-Network': 'network',
  'X-Kube': 'kube',
  'X-Build': 'build',
};

/** `.image` keys that `podman image pull` takes, as quadlet passes them. */
const IMAGE_PULL_OPTIONS: Record<string, (value: string) => string[]> = {
  AllTags: (v) => (isTrue(v) ? ['--all-tags'] : []),
  Arch: (v) => ['--arch', v],
  AuthFile: (v) => ['--authfile', v],
  CertDir: (v) => ['--cert-dir', v],
  Creds: (v) => ['--creds', v],
  DecryptionKey: (v) => ['--decryption-key', v],
  OS: (v) => ['--os', v],
  TLSVerify: (v) => [`--tls-verify=${isTrue(v)}`],
  Variant: (v) => ['--variant', v],
};

function isTrue(value: string): boolean {
  return /^(1|yes|true|on)$/i.test(value.trim());
}

/** Splits `quadlet -dryrun` output into unit name → unit text. */
export function splitGeneratedUnits(output: string): Map<string, string> {
  const units = new Map<string, string>();
  let name: string | undefined;
  let lines: string[] = [];
  const flush = () => {
    if (name !== undefined) units.set(name, lines.join('\n'));
  };
  for (const line of output.split('\n')) {
    const header = /^---(.+)---$/.exec(line);
    if (header) {
      flush();
      name = header[1]!;
      lines = [];
    } else if (name !== undefined) {
      lines.push(line);
    }
  }
  flush();
  return units;
}

function parseSections(text: string): Sections {
  const sections: Sections = new Map();
  let current: Array<[string, string]> | undefined;
  // systemd joins a line ending in a backslash with the next one.
  const joined = text.replace(/\\\n/g, ' ');
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = sections.get(section[1]!) ?? [];
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current && eq > 0) current.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return sections;
}

function lastValue(sections: Sections, section: string, key: string): string | undefined {
  const entries = sections.get(section) ?? [];
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i]![0] === key) return entries[i]![1];
  return undefined;
}

function words(value: string): string[] {
  return value.split(/\s+/).filter((w) => w.length > 0);
}

function exitPolicyOf(sections: Sections): 'stop' | 'continue' | undefined {
  let policy: 'stop' | 'continue' | undefined;
  for (const [key, value] of sections.get('Service') ?? []) {
    if (key !== 'ExecStartPre' && key !== 'ExecStart') continue;
    const argv = words(value);
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      const v = arg.startsWith('--exit-policy=')
        ? arg.slice('--exit-policy='.length)
        : arg === '--exit-policy'
          ? argv[i + 1]
          : undefined;
      if (v === 'stop' || v === 'continue') policy = v;
    }
  }
  return policy;
}

function parsePullPolicy(value: string | undefined): PullPolicy | undefined {
  if (value === undefined) return 'missing';
  const v = value.trim().toLowerCase();
  // podman's own spellings: `true`/`false` are kept for Docker compatibility.
  if (v === 'always' || v === 'true') return 'always';
  if (v === 'missing' || v === 'ifmissing' || v === '') return 'missing';
  if (v === 'never' || v === 'false') return 'never';
  if (v === 'newer' || v === 'ifnewer') return 'newer';
  return undefined;
}

/** Reads each generated unit's dependencies, kind, exit policy and image. */
export function parseUnitGraph(output: string): Map<string, UnitNode> {
  const parsed = new Map<string, Sections>();
  for (const [name, text] of splitGeneratedUnits(output)) parsed.set(name, parseSections(text));
  const graph = new Map<string, UnitNode>();
  for (const [name, sections] of parsed) {
    const node: UnitNode = {
      name,
      kind: undefined,
      source: undefined,
      requires: [],
      requisite: [],
      bindsTo: [],
      partOf: [],
      wants: [],
      after: [],
      exitPolicy: undefined,
      image: undefined,
      imageUnit: undefined,
    };
    for (const [section, kind] of Object.entries(KINDS))
      if (sections.has(section)) node.kind = kind;
    for (const [key, value] of sections.get('Unit') ?? []) {
      if (key === 'SourcePath') node.source = value.split('/').at(-1);
      const field = DEPENDENCY_KEYS[key as keyof typeof DEPENDENCY_KEYS];
      if (!field) continue;
      for (const unit of words(value)) if (!node[field].includes(unit)) node[field].push(unit);
    }
    if (node.kind === 'pod') node.exitPolicy = exitPolicyOf(sections) ?? 'stop';
    if (node.kind === 'image') {
      const image = lastValue(sections, 'X-Image', 'Image');
      if (image) {
        const options: string[] = [];
        for (const [key, value] of sections.get('X-Image') ?? []) {
          options.push(...(IMAGE_PULL_OPTIONS[key]?.(value) ?? []));
        }
        node.image = { image, policy: 'always', options, source: 'Image=' };
      }
    }
    if (node.kind === 'container') {
      const image = lastValue(sections, 'X-Container', 'Image');
      const pull = lastValue(sections, 'X-Container', 'Pull');
      if (image?.endsWith('.image') || image?.endsWith('.build')) {
        node.imageUnit = image;
      } else if (image) {
        const policy = parsePullPolicy(pull);
        if (policy && policy !== 'never') {
          node.image = {
            image,
            policy,
            options: [],
            source: pull === undefined ? 'Image=' : `Pull=${pull}`,
          };
        }
      }
    }
    graph.set(name, node);
  }
  return graph;
}

/**
 * Adds a generation's plain systemd units (a bundle's `systemd/` files) to
 * the units quadlet generated: each with the dependencies of its [Unit], its
 * source its own file name, and the `Wants=`/`Requires=` that its [Install]
 * `WantedBy=`/`RequiredBy=` give their targets through the rick-units
 * generator's links.
 */
export function withPlainUnits(
  graph: UnitGraph,
  units: ReadonlyArray<{ name: string; text: string }>,
): Map<string, UnitNode> {
  const out = new Map([...graph].map(([name, node]) => [name, { ...node }]));
  const install: Array<[string, 'wants' | 'requires', string]> = [];
  for (const { name, text } of units) {
    const node = parseUnitGraph(`---${name}---\n${text}`).get(name);
    if (!node) continue;
    out.set(name, { ...node, source: name });
    const sections = parseSections(text);
    for (const [key, value] of sections.get('Install') ?? []) {
      const field = key === 'WantedBy' ? 'wants' : key === 'RequiredBy' ? 'requires' : undefined;
      if (field) for (const target of words(value)) install.push([target, field, name]);
    }
  }
  for (const [target, field, name] of install) {
    const node = out.get(target);
    if (node && !node[field].includes(name)) node[field] = [...node[field], name];
  }
  return out;
}

/** The generated unit of a Quadlet file (by base name), if quadlet made one. */
export function unitOfSource(graph: UnitGraph, source: string): UnitNode | undefined {
  for (const node of graph.values()) if (node.source === source) return node;
  return undefined;
}

/** Units that restart when `unit` restarts and stop when it stops (Requires=, Requisite=, BindsTo=, PartOf= on it). */
export function dependentsOf(graph: UnitGraph, unit: string): string[] {
  const out: string[] = [];
  for (const node of graph.values()) {
    if (
      node.requires.includes(unit) ||
      node.requisite.includes(unit) ||
      node.bindsTo.includes(unit) ||
      node.partOf.includes(unit)
    ) {
      out.push(node.name);
    }
  }
  return out.sort();
}

/** The containers of a pod: the units bound to it. */
export function membersOf(graph: UnitGraph, pod: string): string[] {
  return [...graph.values()]
    .filter((n) => n.bindsTo.includes(pod))
    .map((n) => n.name)
    .sort();
}
