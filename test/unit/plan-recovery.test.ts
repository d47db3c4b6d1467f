/**
 * What recovery makes of an intent record (planRecovery, pure): whether the
 * new generation went live decides whether the previous generation's
 * services are restored before anything is removed.
 */
import { describe, expect, it } from 'vitest';
import { type HostView, type Intent, planRecovery } from '../../src/host/recovery.js';
import { emptyState } from '../../src/host/state.js';

function view(current: number, phase: Intent['phase'], onDisk = [1, 2]): HostView {
  const intent: Intent = {
    schemaVersion: 1,
    operation: 'install',
    reason: 'install demo 2.0.0',
    from: 1,
    to: 2,
    created: true,
    pid: 1,
    time: '2026-01-01T00:00:00.000Z',
  };
  if (phase !== undefined) intent.phase = phase;
  return {
    stateExists: true,
    state: { ...emptyState(), live: 1, lastGeneration: 1 },
    intent,
    current,
    onDisk,
  };
}

describe('planRecovery', () => {
  it('current at the new generation: undo, whatever the phase', () => {
    for (const phase of ['prepared', 'live', 'restoring', undefined] as const) {
      expect(planRecovery(view(2, phase))).toMatchObject({
        action: 'undo',
        removeTo: true,
        flippedBack: false,
      });
    }
  });

  it('current back at the previous one after the new one went live: undo its services', () => {
    for (const phase of ['live', 'restoring'] as const) {
      expect(planRecovery(view(1, phase))).toMatchObject({
        action: 'undo',
        removeTo: true,
        flippedBack: true,
      });
    }
  });

  it('a record without a phase (an older rick): taken as live while the new generation is on disk', () => {
    expect(planRecovery(view(1, undefined))).toMatchObject({ action: 'undo', flippedBack: true });
    expect(planRecovery(view(1, undefined, [1]))).toMatchObject({ action: 'discard' });
  });

  it('phase prepared, current at the previous one: the new generation never went live', () => {
    expect(planRecovery(view(1, 'prepared'))).toMatchObject({ action: 'discard', removeTo: true });
  });
});
