/**
 * The publisher's side of a signed release index, for tests: signed bundles
 * put into releases `v<version>` of a ReleaseServer, and the index (planned
 * by rick-bundle index's own planner, signed like it) put on the latest release.
 */
import { readFile } from 'node:fs/promises';
import { type AddedRelease, planIndex } from '../../src/build/release-index.js';
import { signDetached } from '../../src/bundle/openpgp.js';
import { type ReleaseIndex, serializeIndex } from '../../src/bundle/release-index.js';
import {
  type FactoryFile,
  sampleFiles,
  sha256,
  type TestKey,
  type WrittenBundle,
  writeSignedBundle,
} from './bundle-factory.js';
import type { ReleaseServer } from './release-server.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface PublishOptions {
  /** Waves for the releases added, relative to the issue time. */
  waves?: Array<{ afterMs: number; percent: number }>;
  /** Versions of demo to yank (reason: "corrupts uploads"). */
  yank?: string[];
  /** Issue time in ms since the epoch; default 2025-12-31T23:00:00Z, an hour before FakeHost's clock. */
  issued?: number;
  validForMs?: number;
  /** Signing key; default the publisher's. */
  by?: TestKey;
}

export class Publisher {
  index: ReleaseIndex | undefined;
  readonly bundles = new Map<string, WrittenBundle>();

  constructor(
    readonly server: ReleaseServer,
    /** Where the bundles are written before they are published. */
    readonly dir: string,
    readonly key: TestKey,
  ) {}

  /** Publishes release `v<version>` of demo: the sample bundle, or `files`. */
  async bundle(version: string, files?: FactoryFile[]): Promise<WrittenBundle> {
    const b = await writeSignedBundle(this.dir, this.key, {
      version,
      files: files ?? sampleFiles('demo', version),
    });
    this.server.put(`v${version}`, `demo-${version}.tgz`, b.tgz);
    this.server.put(`v${version}`, `demo-${version}.tgz.sig`, await readFile(b.signaturePath));
    this.bundles.set(version, b);
    return b;
  }

  /** Publishes releases of demo and signs a new index onto the latest release. */
  async publish(versions: string[], options: PublishOptions = {}): Promise<ReleaseIndex> {
    const add: AddedRelease[] = [];
    for (const version of versions) {
      const b = this.bundles.get(version) ?? (await this.bundle(version));
      add.push({
        bundle: 'demo',
        version,
        channel: version.includes('-') ? 'prerelease' : 'stable',
        sha256: sha256(b.tgz),
        size: b.tgz.length,
        files: { bundle: `demo-${version}.tgz`, signature: `demo-${version}.tgz.sig` },
        location: `../../download/v${version}/`,
      });
    }
    const { index } = planIndex(
      this.index,
      {
        add,
        ...(options.waves ? { waves: options.waves } : {}),
        rollout: [],
        yank: (options.yank ?? []).map((version) => ({ bundle: 'demo', version })),
        reason: 'corrupts uploads',
        unyank: [],
      },
      new Date(options.issued ?? Date.parse('2026-01-01T00:00:00Z') - HOUR),
      options.validForMs ?? 7 * DAY,
    );
    await this.serve(index, options.by);
    this.index = index;
    return index;
  }

  /** Serves this index (signed by `by`, default the publisher's key) as the latest one. */
  async serve(index: ReleaseIndex, by: TestKey = this.key): Promise<void> {
    const text = serializeIndex(index);
    const tag = `v${[...this.bundles.keys()].at(-1) ?? '0.0.0'}`;
    this.server.put(tag, 'index.json', text);
    this.server.put(
      tag,
      'index.json.sig',
      Buffer.from(await signDetached(Buffer.from(text), by.privateKey)),
    );
    this.server.latest = tag;
  }
}
