import { describe, expect, it } from 'vitest';
import { confirmedLiveOrder, planPrune } from '../../src/host/generations.js';
import { chooseRollbackTarget } from '../../src/host/rollback.js';
import { type HistoryEntry, type HistoryOutcome, stateSchema } from '../../src/host/state.js';

const entry = (generation: number, outcome: HistoryOutcome, version = `${generation}.0.0`) =>
  ({ generation, bundle: 'demo', version, time: '2026-01-01T00:00:00Z', outcome }) as HistoryEntry;

describe('planPrune', () => {
  it('prunes failed generations before any that was confirmed live', () => {
    const history = [
      entry(1, 'installed'),
      entry(2, 'rolled-back'),
      entry(3, 'rolled-back'),
      entry(4, 'installed'),
    ];
    expect(planPrune([1, 2, 3, 4], 2, 4, history)).toEqual([2, 3]);
    // With room for one more, the newest failed one stays.
    expect(planPrune([1, 2, 3, 4], 3, 4, history)).toEqual([2]);
  });

  it('keeps the generations most recently live, not the highest numbers', () => {
    const history = [
      entry(1, 'installed'),
      entry(2, 'installed'),
      entry(3, 'installed'),
      entry(1, 'rollback'),
      entry(4, 'installed'),
    ];
    expect(confirmedLiveOrder(history)).toEqual([4, 1, 3, 2]);
    expect(planPrune([1, 2, 3, 4], 2, 4, history)).toEqual([2, 3]);
  });

  it('ranks generations history says nothing about between confirmed and failed ones', () => {
    // A state.json rebuilt by adoption knows only the live generation.
    const history = [entry(2, 'recovered'), entry(5, 'adopted')];
    expect(planPrune([1, 2, 3, 5], 3, 5, history)).toEqual([2]);
    expect(planPrune([1, 2, 3, 5], 2, 5, history)).toEqual([1, 2]);
  });

  it('never prunes the live generation, whatever keep says', () => {
    const history = [entry(1, 'installed'), entry(2, 'installed')];
    expect(planPrune([1, 2], 1, 1, history)).toEqual([2]);
    expect(planPrune([1, 2, 3], 1, 3, [])).toEqual([1, 2]);
  });

  it('reads a state file written before retention looked at history', () => {
    const old = stateSchema.parse({
      schemaVersion: 1,
      live: 2,
      lastGeneration: 2,
      history: [entry(1, 'installed'), entry(2, 'installed')],
    });
    expect(planPrune([1, 2], 3, old.live, old.history)).toEqual([]);
  });
});

describe('chooseRollbackTarget', () => {
  const versions = (...gens: Array<[number, string]>) =>
    new Map(gens.map(([n, v]) => [n, { versions: { demo: v } }]));

  it('goes to the generation live before the current one', () => {
    const state = {
      history: [
        entry(1, 'installed'),
        entry(2, 'installed'),
        entry(3, 'installed'),
        entry(1, 'rollback'),
        entry(4, 'installed'),
      ],
      bundles: {},
    };
    const on = versions([1, '1.0.0'], [2, '2.0.0'], [3, '3.0.0'], [4, '4.0.0']);
    expect(chooseRollbackTarget(state, 4, on)).toEqual({ target: 1, skipped: [] });
  });

  it('passes over a quarantined version, a pruned generation, and never steps forward', () => {
    const state = {
      history: [
        entry(1, 'installed'),
        entry(2, 'installed'),
        entry(3, 'installed'),
        entry(4, 'installed'),
        entry(3, 'rollback'),
      ],
      bundles: { demo: { quarantined: ['2.0.0'] } },
    };
    const on = versions([1, '1.0.0'], [2, '2.0.0'], [3, '3.0.0'], [4, '4.0.0']);
    on.delete(1);
    expect(chooseRollbackTarget(state, 3, on)).toEqual({
      skipped: [
        { generation: 2, why: 'demo 2.0.0 quarantined' },
        { generation: 1, why: 'no longer on this host' },
      ],
    });
  });

  it('does not pass over a quarantined version the live generation runs too', () => {
    const state = {
      history: [entry(1, 'installed', '1.0.0'), entry(2, 'installed', '1.0.0')],
      bundles: { demo: { quarantined: ['1.0.0'] } },
    };
    expect(chooseRollbackTarget(state, 2, versions([1, '1.0.0'], [2, '1.0.0']))).toEqual({
      target: 1,
      skipped: [],
    });
  });

  it('never returns to a generation that failed or was undone', () => {
    const state = {
      history: [entry(1, 'rolled-back'), entry(2, 'recovered'), entry(3, 'installed')],
      bundles: {},
    };
    const on = versions([1, '1.0.0'], [2, '2.0.0'], [3, '3.0.0']);
    expect(chooseRollbackTarget(state, 3, on)).toEqual({ skipped: [] });
  });
});
