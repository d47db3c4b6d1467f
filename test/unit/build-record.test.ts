/**
 * The build record (installer/build-record.json): canonical bytes, images
 * sorted and each once, and every problem of a record named.
 */
import { describe, expect, it } from 'vitest';
import {
  parseBuildRecord,
  planBuildRecord,
  serializeBuildRecord,
} from '../../src/bundle/build-record.js';

const toolchain = { node: '24.21.0', rick: '1.4.0', esbuild: '0.28.2' };
const a = { reference: 'docker.io/library/redis:7', digest: `sha256:${'a'.repeat(64)}` };
const b = { reference: 'ghcr.io/example/app:1.2', digest: `sha256:${'b'.repeat(64)}` };

describe('the build record', () => {
  it('sorts the images, so its bytes depend on what was pinned and not on the order found', () => {
    const one = serializeBuildRecord(planBuildRecord(toolchain, [b, a]));
    expect(serializeBuildRecord(planBuildRecord(toolchain, [a, b]))).toBe(one);
    expect(one).toBe(
      `${JSON.stringify({ schemaVersion: 1, toolchain, images: [a, b] }, null, 2)}\n`,
    );
  });

  it('has no images field when nothing is pinned', () => {
    const record = planBuildRecord({ ...toolchain, esbuild: null }, []);
    expect(record).toEqual({ schemaVersion: 1, toolchain: { ...toolchain, esbuild: null } });
    expect(parseBuildRecord(Buffer.from(serializeBuildRecord(record)))).toEqual({
      ok: true,
      record,
    });
  });

  it('names every problem: an unknown field, a later schemaVersion, images out of order or twice', () => {
    const bad = parseBuildRecord(
      Buffer.from(JSON.stringify({ schemaVersion: 2, toolchain, signedBy: 'x' })),
    );
    expect(bad).toEqual({
      ok: false,
      problem: 'schemaVersion: Invalid input: expected 1; (root): Unrecognized key: "signedBy"',
    });
    const unsorted = parseBuildRecord(
      Buffer.from(JSON.stringify({ schemaVersion: 1, toolchain, images: [b, a, a] })),
    );
    expect(unsorted).toEqual({
      ok: false,
      problem: `images.1.reference: images must be sorted by reference, each once: ${a.reference} follows ${b.reference}; images.2.reference: images must be sorted by reference, each once: ${a.reference} follows ${a.reference}`,
    });
    expect(parseBuildRecord(Buffer.from('{'))).toMatchObject({ ok: false });
    expect(() => planBuildRecord({ ...toolchain, node: 'v24' }, [])).toThrow(
      'invalid build record: toolchain.node: must be a version such as 1.2.3',
    );
  });
});
