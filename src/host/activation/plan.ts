/**
 * What an activation does, computed from the live generation and the next
 * one, without I/O: which units changed, which systemd jobs make them live,
 * which other units those jobs restart, which units stop, and which images
 * must be pulled first. The operator's diff of the same two generations is in
 * plan-diff.ts (loaded by `plan` only: an install never prints it).
 *
 * "Changed" is what a service sees: its unit, or a file of the generation the
 * unit references (its env file, a mounted config), differs once each
 * generation's own directory is taken out. A unit that differs only by its
 * generation path, with the same env content, did not change. A drop-in
 * (`quadlet/<unit>.d/*.conf`) is part of the unit it applies to.
 *
 * The jobs follow the units quadlet generates (units.ts), as systemd runs
 * them (src/core/transaction.c, unit-dependency-atom.c):
 *
 * - restarting a unit restarts every running unit that has `Requires=`,
 *   `Requisite=`, `BindsTo=` or `PartOf=` on it, and starts what it
 *   `Requires=`, `BindsTo=` or `Wants=` that is not running;
 * - a start job for a unit that is running when the job is queued is
 *   dropped, so a unit bound to a pod whose start was dropped fails with
 *   result "dependency" when the pod stops meanwhile;
 * - and podman stops a pod created with `--exit-policy=stop` (quadlet's
 *   default) when its last container exits.
 *
 * So when every running container of a pod would restart in one transaction
 * (all changed), the pod would be left empty and stop. Its containers then
 * restart one at a time instead, each `systemctl restart` waiting for its
 * job before the next is queued (a rolling restart within the pod): a
 * restart of a container does not touch the pod it is bound to (systemd
 * propagates a restart to the units bound to or requiring the restarted
 * one, not to the ones it binds to; the pulled-in start of the running pod
 * is dropped), and podman stops the pod only when its last container exits.
 * The pod and its infra container keep running, and a container's downtime
 * is its own restart. The containers that others are ordered `After=` go
 * first, then those without HTTP checks, then those that serve; by name
 * within each.
 *
 * The pod's own service is restarted instead (its restart restarts the
 * containers bound to it and starts the ones it wants, in order) when the
 * pod's unit itself changed, when fewer than two of its running containers
 * stay (one that stays alone would empty it on its restart), when a unit
 * outside the pod restarts a container with it (a changed `.image` unit),
 * or when one container's restart restarts all the others with it. When some
 * container of the pod keeps running, only the changed ones restart and the
 * pod stays up.
 */

import { CADDY_SERVICE } from '../../bundle/caddy.js';
import { type Service, unitFilePath } from '../../bundle/manifest.js';
import { findUnitImages } from '../../registry/unit-images.js';
import { RICK_STATE_DIR } from '../paths.js';
import { GENERATION_MARKER, normalizeGenerationPaths } from '../substitute.js';
import {
  dependentsOf,
  type ImageNeed,
  membersOf,
  type PullPolicy,
  type UnitGraph,
  unitOfSource,
} from './units.js';

/** One bundle as it is (or would be) written into a generation. */
export interface RenderedBundle {
  name: string;
  version: string;
  services: readonly Service[];
  /** Every rendered file by bundle path (`quadlet/x.container`, `env/x.env`, …), as written. */
  files: ReadonlyMap<string, Buffer>;
  /** The same files with secret values masked, for display only. */
  masked: ReadonlyMap<string, string>;
}

export interface GenerationView {
  generation: number;
  bundles: ReadonlyMap<string, RenderedBundle>;
}

/** The units quadlet generates from each generation; absent when quadlet could not be run. */
export interface UnitGraphs {
  live?: UnitGraph | undefined;
  next?: UnitGraph | undefined;
}

export interface ServiceChange {
  service: string;
  bundle: string;
  /** Bundle paths whose change makes the service restart. */
  because: string[];
}

/** One unit handed to `systemctl restart`, and what systemd does with it. */
export interface RestartJob {
  unit: string;
  /** `start` for a unit that is not running yet (restart starts it). */
  verb: 'restart' | 'start';
  /** Other units the job restarts or starts through their dependencies. */
  brings: string[];
  /** Changed files (bundle paths) of the unit and of the units it brings. */
  because: string[];
  /** Set when a pod restarts because all its running containers restart or stop. */
  forPod: boolean;
  /**
   * The pod whose containers restart one at a time, set on each of those
   * jobs: each is its own `systemctl restart`, after the one before it.
   */
  rollingPod?: string | undefined;
}

/** An image to pull before the flip, and the units whose start needs it. */
export interface ImagePull extends ImageNeed {
  units: string[];
}

export interface ActivationPlan {
  /** Units whose unit file or referenced files changed. */
  changed: ServiceChange[];
  /** Units not in the live generation: started. */
  added: string[];
  /** Units of the live generation that are gone: stopped, before the restarts. */
  removed: string[];
  /** Units left running as they are. */
  unchanged: string[];
  /** The units given to `systemctl restart`, in the order of `steps`. */
  restart: string[];
  /** The jobs, in the order they run. */
  jobs: RestartJob[];
  /**
   * The `systemctl restart` runs, in order: each waits for its jobs before
   * the next. The jobs that can share a transaction first, then one run for
   * each container of a rolling restart.
   */
  steps: string[][];
  /** Every unit that starts or restarts (the jobs' units and what they bring), sorted. */
  restarted: string[];
  /** Images the restarted units need, to pull before the flip. */
  images: ImagePull[];
  /** `<bundle>/caddy/<site>` of every Caddy site added, changed or removed. */
  sites: string[];
  /** Units reloaded after the restarts: caddy.service when a site changed. */
  reload: string[];
  /** `<bundle>/<path>` of every file that differs (after taking out generation paths). */
  changedFiles: string[];
  /** Files whose masked rendering is equal but whose bytes differ: a secret changed. */
  secretOnlyChanges: string[];
  /** Files whose masked rendering is equal, holding no secret: a host fact changed. */
  factOnlyChanges: string[];
  /** Images whose pinned digest changes (images.lock moved), each once. */
  imageDigests: ImageDigestChange[];
}

/** An image reference (tag) whose digest differs between the live and the next generation. */
export interface ImageDigestChange {
  /** The bundle whose units name the image. */
  bundle: string;
  /** The reference as the units write it, without the digest. */
  reference: string;
  /** Undefined: the live units named the tag alone. */
  before: string | undefined;
  /** Undefined: the next units name the tag alone. */
  after: string | undefined;
}

/** `reference → digest` of every `Image=` of a bundle's Quadlet units (no digest: undefined). */
function pinnedImagesOf(bundle: RenderedBundle | undefined): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const [path, data] of bundle?.files ?? []) {
    if (!path.startsWith('quadlet/')) continue;
    for (const image of findUnitImages(path.slice('quadlet/'.length), data.toString('utf8'))) {
      const at = image.reference.lastIndexOf('@');
      const digest = at < 0 ? undefined : image.reference.slice(at + 1);
      out.set(at < 0 ? image.reference : image.reference.slice(0, at), digest);
    }
  }
  return out;
}

/**
 * The images whose digest moved: a reference the live generation names too,
 * with another digest (or none, on one side). A tag that is only added or
 * only removed is the unit's change, shown in its diff.
 */
export function imageDigestChanges(
  live: GenerationView | undefined,
  next: GenerationView,
): ImageDigestChange[] {
  const changes: ImageDigestChange[] = [];
  for (const [name, bundle] of [...next.bundles].sort(([a], [b]) => byName(a, b))) {
    const before = pinnedImagesOf(live?.bundles.get(name));
    for (const [reference, after] of [...pinnedImagesOf(bundle)].sort(([a], [b]) => byName(a, b))) {
      if (!before.has(reference)) continue;
      const was = before.get(reference);
      if (was !== after) changes.push({ bundle: name, reference, before: was, after });
    }
  }
  return changes;
}

/** `sha256:0123456789ab…`: enough to tell two digests apart in a plan line. */
function shortDigest(digest: string | undefined): string {
  return digest === undefined ? '(tag only)' : `${digest.slice(0, 'sha256:'.length + 12)}…`;
}

const REFERENCE = new RegExp(
  `${`${RICK_STATE_DIR}/generations/${GENERATION_MARKER}`.replace(/[/.]/g, '\\$&')}/bundles/([a-z0-9-]+)/([A-Za-z0-9_.@+/-]+)`,
  'g',
);

export interface FileKey {
  bundle: string;
  path: string;
}

/** Every `<bundle>/<path>` of either generation, sorted. */
export function fileKeys(
  live: GenerationView | undefined,
  next: GenerationView,
): Array<[string, FileKey]> {
  const all = new Map<string, FileKey>();
  for (const view of [live, next]) {
    for (const bundle of view?.bundles.values() ?? []) {
      for (const path of bundle.files.keys())
        all.set(`${bundle.name}/${path}`, { bundle: bundle.name, path });
    }
  }
  return [...all.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function normalized(view: GenerationView | undefined, key: FileKey): string | undefined {
  const data = view?.bundles.get(key.bundle)?.files.get(key.path);
  return data === undefined ? undefined : normalizeGenerationPaths(data.toString('utf8'));
}

export function maskedNormalized(
  view: GenerationView | undefined,
  key: FileKey,
): string | undefined {
  const text = view?.bundles.get(key.bundle)?.masked.get(key.path);
  return text === undefined ? undefined : normalizeGenerationPaths(text);
}

interface UnitOwner {
  bundle: string;
  /** Its unit file, as a bundle path (`quadlet/x.container`, `systemd/x.service`). */
  file: string;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Every unit of a generation with the bundle and unit file it comes from:
 * the manifests' services, and with the generated units also the Quadlet
 * units they do not list (a `.image` a container needs, a pod not named as a
 * service). A plain systemd unit takes part only as a service: the others
 * are reached through their dependencies or triggers (a timer's service, a
 * unit another one wants), as systemd reaches them.
 */
function unitsOf(view: GenerationView | undefined, graph: UnitGraph | undefined) {
  const out = new Map<string, UnitOwner>();
  for (const bundle of view?.bundles.values() ?? []) {
    for (const s of bundle.services)
      out.set(s.service, { bundle: bundle.name, file: unitFilePath(s.unit) });
    if (!graph) continue;
    for (const path of bundle.files.keys()) {
      if (!path.startsWith('quadlet/')) continue;
      const node = unitOfSource(graph, path.slice(path.lastIndexOf('/') + 1));
      if (node && !out.has(node.name)) out.set(node.name, { bundle: bundle.name, file: path });
    }
  }
  return out;
}

/** Files whose change restarts a unit: its Quadlet file and the generation files it references. */
function reasonsFor(
  unit: UnitOwner,
  liveOwner: UnitOwner | undefined,
  next: GenerationView,
  changedFiles: ReadonlySet<string>,
): string[] {
  const because: string[] = [];
  if (changedFiles.has(`${unit.bundle}/${unit.file}`) || liveOwner?.bundle !== unit.bundle) {
    because.push(unit.file);
  }
  // A drop-in (quadlet/<unit>.d/*.conf) changes the unit it applies to.
  const dropinDir = `${unit.bundle}/${unit.file}.d/`;
  for (const id of [...changedFiles].sort()) {
    if (id.startsWith(dropinDir)) because.push(id.slice(unit.bundle.length + 1));
  }
  const text = normalized(next, { bundle: unit.bundle, path: unit.file }) ?? '';
  const referenced = new Set<string>();
  for (const m of text.matchAll(REFERENCE)) referenced.add(`${m[1]}/${m[2]}`);
  for (const ref of [...referenced].sort()) {
    if (changedFiles.has(ref))
      because.push(ref.startsWith(`${unit.bundle}/`) ? ref.slice(unit.bundle.length + 1) : ref);
  }
  return because;
}

/** How a masked rendering shows a secret (src/host/generation-files.ts). */
const SECRET_MASK = '***secret:';

const POLICY_RANK: Record<PullPolicy, number> = { never: 0, missing: 1, newer: 2, always: 3 };

export function planActivation(
  live: GenerationView | undefined,
  next: GenerationView,
  graphs: UnitGraphs = {},
): ActivationPlan {
  const keys = fileKeys(live, next);
  const changedFiles = new Set<string>();
  const secretOnlyChanges: string[] = [];
  const factOnlyChanges: string[] = [];
  for (const [id, key] of keys) {
    const before = normalized(live, key);
    const after = normalized(next, key);
    if (before === after) continue;
    changedFiles.add(id);
    if (before !== undefined && after !== undefined) {
      const masked = maskedNormalized(next, key);
      // Equal masked renderings: what changed is hidden from the diff. A
      // secret only when the file holds one; else a host fact it uses.
      if (maskedNormalized(live, key) === masked) {
        if (masked?.includes(SECRET_MASK)) secretOnlyChanges.push(id);
        else factOnlyChanges.push(id);
      }
    }
  }

  const graph = graphs.next;
  // Without the live generation's own units (quadlet rejects them now), its
  // pods are taken to hold the containers the next generation gives them.
  const liveGraph = graphs.live ?? graphs.next;
  const liveUnits = unitsOf(live, liveGraph);
  const nextUnits = unitsOf(next, graph);
  const changed: ServiceChange[] = [];
  const added: string[] = [];
  const reasons = new Map<string, string[]>();
  for (const [unit, owner] of [...nextUnits].sort(([a], [b]) => byName(a, b))) {
    if (!liveUnits.has(unit)) {
      added.push(unit);
      continue;
    }
    const because = reasonsFor(owner, liveUnits.get(unit), next, changedFiles);
    if (because.length) {
      changed.push({ service: unit, bundle: owner.bundle, because });
      reasons.set(unit, because);
    }
  }
  const removed = [...liveUnits.keys()].filter((u) => !nextUnits.has(u)).sort(byName);
  const direct = new Set([...changed.map((c) => c.service), ...added]);

  // What systemd restarts or starts from a set of restarted units: the
  // running units that depend on them, and a pod's containers.
  const closure = (from: Iterable<string>): Set<string> => {
    const seen = new Set<string>();
    const queue = [...from];
    while (queue.length) {
      const unit = queue.pop()!;
      if (seen.has(unit)) continue;
      seen.add(unit);
      if (!graph) continue;
      for (const d of dependentsOf(graph, unit)) {
        if (liveUnits.has(d) || direct.has(d)) queue.push(d);
      }
      const node = graph.get(unit);
      for (const w of [
        ...(node?.wants ?? []),
        ...(node?.requires ?? []),
        ...(node?.bindsTo ?? []),
      ]) {
        // A pulled-in start of a running unit is dropped; a new one starts.
        if (nextUnits.has(w) && !liveUnits.has(w)) queue.push(w);
      }
    }
    return seen;
  };

  const services = new Map<string, Service>();
  for (const bundle of next.bundles.values())
    for (const s of bundle.services) services.set(s.service, s);

  /**
   * The order in which a pod's running containers can restart one at a
   * time with the pod kept running, or undefined when they cannot (see the
   * header). `forced` are the pods that restart through their own service.
   */
  const rollingOrder = (pod: string, forced: ReadonlySet<string>): string[] | undefined => {
    if (!graph || direct.has(pod)) return undefined;
    const nextMembers = new Set(membersOf(graph, pod));
    const stay = membersOf(liveGraph!, pod).filter(
      (m) => liveUnits.has(m) && nextMembers.has(m) && !removed.includes(m),
    );
    if (stay.length < 2 || !stay.every((m) => direct.has(m))) return undefined;
    const others = [...direct, ...forced].filter((u) => u !== pod && !stay.includes(u));
    const outside = closure(others);
    if (stay.some((m) => outside.has(m))) return undefined;
    const order = rollingSequence(stay, graph, services);
    const done = new Set<string>();
    for (const unit of order) {
      if (done.has(unit)) continue;
      const reach = [...closure([unit])].filter((u) => stay.includes(u));
      // This restart would restart every container of the pod at once.
      if (reach.length === stay.length) return undefined;
      for (const u of reach) done.add(u);
    }
    return order;
  };

  const forcedPods = new Set<string>();
  const rolling = new Map<string, string[]>();
  let restarted = closure(direct);
  for (let changedPods = true; changedPods && graph; ) {
    changedPods = false;
    for (const pod of [...graph.values()].filter((n) => n.kind === 'pod')) {
      if (restarted.has(pod.name) || forcedPods.has(pod.name) || rolling.has(pod.name)) continue;
      if (!liveUnits.has(pod.name)) continue;
      if ((liveGraph?.get(pod.name)?.exitPolicy ?? pod.exitPolicy) !== 'stop') continue;
      const running = membersOf(liveGraph!, pod.name).filter((m) => liveUnits.has(m));
      if (running.length === 0) continue;
      if (running.every((m) => restarted.has(m) || removed.includes(m))) {
        const order = rollingOrder(pod.name, forcedPods);
        if (order) rolling.set(pod.name, order);
        else {
          forcedPods.add(pod.name);
          changedPods = true;
        }
      }
    }
    // A pod forced since may restart a rolling pod's containers with it.
    for (const pod of [...rolling.keys()]) {
      if (rollingOrder(pod, forcedPods)) continue;
      rolling.delete(pod);
      forcedPods.add(pod);
      changedPods = true;
    }
    if (changedPods) restarted = closure([...direct, ...forcedPods]);
  }

  const jobs: RestartJob[] = [];
  const covered = new Set<string>();
  const jobFor = (unit: string, rollingPod?: string): RestartJob => {
    const reach = closure([unit]);
    const brings = [...reach].filter((u) => u !== unit && !covered.has(u)).sort(byName);
    for (const u of reach) covered.add(u);
    const because = new Set<string>();
    for (const u of [unit, ...brings]) for (const r of reasons.get(u) ?? []) because.add(r);
    return {
      unit,
      verb: liveUnits.has(unit) ? 'restart' : 'start',
      brings,
      because: [...because],
      forPod: forcedPods.has(unit),
      ...(rollingPod === undefined ? {} : { rollingPod }),
    };
  };
  // The units handed to systemctl in one transaction: pods first, then the
  // rest, each left out when an earlier one already brings it.
  const rolled = new Set([...rolling.values()].flat());
  const candidates = [...forcedPods, ...direct]
    .filter((u) => !rolled.has(u))
    .sort((a, b) => {
      const pa = graph?.get(a)?.kind === 'pod' ? 0 : 1;
      const pb = graph?.get(b)?.kind === 'pod' ? 0 : 1;
      return pa - pb || closure([b]).size - closure([a]).size || byName(a, b);
    });
  const together: RestartJob[] = [];
  for (const unit of candidates) if (!covered.has(unit)) together.push(jobFor(unit));
  together.sort((a, b) => byName(a.unit, b.unit));
  jobs.push(...together);
  const steps: string[][] = together.length ? [together.map((j) => j.unit)] : [];
  // Then each rolling pod's containers, one `systemctl restart` each.
  for (const [pod, order] of [...rolling].sort(([a], [b]) => byName(a, b))) {
    for (const unit of order) {
      if (covered.has(unit)) continue;
      const job = jobFor(unit, pod);
      jobs.push(job);
      steps.push([unit]);
    }
  }

  const images = new Map<string, ImagePull>();
  for (const unit of [...restarted].sort(byName)) {
    const need = graph?.get(unit)?.image;
    if (!need) continue;
    const key = `${need.image}\0${need.options.join('\0')}`;
    const known = images.get(key);
    if (!known) images.set(key, { ...need, units: [unit] });
    else {
      known.units.push(unit);
      if (POLICY_RANK[need.policy] > POLICY_RANK[known.policy]) {
        known.policy = need.policy;
        known.source = need.source;
      }
    }
  }

  const sites = [...changedFiles].filter((id) => /^[a-z0-9-]+\/caddy\//.test(id)).sort(byName);
  return {
    changed,
    added,
    removed,
    unchanged: [...nextUnits.keys()].filter((u) => !restarted.has(u)).sort(byName),
    restart: jobs.map((j) => j.unit),
    jobs,
    steps,
    restarted: [...restarted].sort(byName),
    images: [...images.values()].sort((a, b) => byName(a.image, b.image)),
    sites,
    reload: sites.length > 0 ? [CADDY_SERVICE] : [],
    changedFiles: [...changedFiles],
    secretOnlyChanges,
    factOnlyChanges,
    imageDigests: imageDigestChanges(live, next),
  };
}

/**
 * A pod's running containers in the order they restart one at a time: a
 * container that others are ordered `After=` before them, then the ones
 * without HTTP checks, then the ones that serve, by name within each.
 */
function rollingSequence(
  members: readonly string[],
  graph: UnitGraph,
  services: ReadonlyMap<string, Service>,
): string[] {
  const serves = (u: string) => ((services.get(u)?.checks.length ?? 0) > 0 ? 1 : 0);
  const rank = (a: string, b: string) => serves(a) - serves(b) || byName(a, b);
  const after = (u: string) => (graph.get(u)?.after ?? []).filter((d) => members.includes(d));
  const order: string[] = [];
  const left = [...members];
  while (left.length) {
    // A cycle of After= (systemd would refuse it) falls back to the rank alone.
    const ready = left.filter((u) => after(u).every((d) => order.includes(d)));
    const next = (ready.length ? ready : left).sort(rank)[0]!;
    order.push(next);
    left.splice(left.indexOf(next), 1);
  }
  return order;
}

function describeJob(job: RestartJob): string {
  const why = job.because.length ? `${job.because.join(', ')} changed` : 'new';
  if (job.brings.length === 0) return `${job.verb} ${job.unit} (${why})`;
  const verb = job.verb === 'start' ? 'starts' : 'restarts';
  const pod = job.forPod
    ? '; every running container of the pod restarts or stops, and podman would stop the pod with the last one (--exit-policy=stop)'
    : '';
  return `${job.verb} ${job.unit} (${verb} ${job.brings.join(', ')}: ${why}${pod})`;
}

/**
 * `restart a.service, then b.service, one at a time (…)`: the containers of
 * a pod restarted in turn, and why the pod is not restarted with them.
 */
function describeRolling(pod: string, group: readonly RestartJob[]): string {
  const units = group.map((j) =>
    j.brings.length ? `${j.unit} (with ${j.brings.join(', ')})` : j.unit,
  );
  const because = [...new Set(group.flatMap((j) => j.because))];
  const why = because.length ? `${because.join(', ')} changed` : 'new';
  return `restart ${units.join(', then ')}, one at a time (${why}; each waits for the one before, so ${pod} is never empty and keeps running: podman stops a pod when its last container exits, --exit-policy=stop)`;
}

function shownOptions(options: readonly string[]): string {
  const out = options.map((o, i) => (options[i - 1] === '--creds' ? '***' : o));
  return out.length ? ` ${out.join(' ')}` : '';
}

/** `localhost/x:1 (Pull=missing; for a.service)`, credentials masked: podman's own key. */
export function describeImage(image: ImagePull): string {
  return `${image.image} (Pull=${image.policy}${shownOptions(image.options)}; for ${image.units.join(', ')})`;
}

/**
 * The plan as printed by `rick-install plan` and before an install. In an
 * offline tree (`--root`) nothing runs, so every action reads "would".
 */
export function formatPlan(
  plan: ActivationPlan,
  options: {
    offline?: boolean;
    /** Units an adoption takes over (`adopt`): kept ones read "adopted, unchanged". */
    adopted?: ReadonlySet<string>;
  } = {},
): string {
  const lines: string[] = [];
  for (const s of plan.removed) lines.push(`stop    ${s} (removed)`);
  for (let i = 0; i < plan.jobs.length; i++) {
    const job = plan.jobs[i]!;
    if (job.rollingPod === undefined) {
      lines.push(describeJob(job).replace(/^start /, 'start   '));
      continue;
    }
    const group = [job];
    while (plan.jobs[i + 1]?.rollingPod === job.rollingPod) group.push(plan.jobs[++i]!);
    lines.push(describeRolling(job.rollingPod, group));
  }
  for (const s of plan.unchanged)
    lines.push(`keep    ${s} (${options.adopted?.has(s) ? 'adopted, unchanged' : 'unchanged'})`);
  for (const u of plan.reload) lines.push(`reload  ${u} (${plan.sites.join(', ')} changed)`);
  // An offline tree pulls nothing (the plan's notes say so).
  if (!options.offline)
    for (const image of plan.images) lines.push(`pull    ${describeImage(image)}`);
  for (const f of plan.secretOnlyChanges) lines.push(`secret  ${f} (a secret value changed)`);
  for (const f of plan.factOnlyChanges) lines.push(`fact    ${f} (a host fact it uses changed)`);
  for (const i of plan.imageDigests) {
    lines.push(`image   ${i.reference} ${shortDigest(i.before)} → ${shortDigest(i.after)}`);
  }
  if (lines.length === 0) lines.push('no services or sites');
  const shown = options.offline
    ? lines.map((l) => l.replace(/^(stop|start|restart|pull|reload) +/, 'would $1 '))
    : lines;
  return `${shown.join('\n')}\n`;
}
