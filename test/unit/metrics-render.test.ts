import { describe, expect, it } from 'vitest';
import {
  parsePreviousIndexMetrics,
  parsePreviousMetrics,
  renderMetrics,
} from '../../src/feed/metrics.js';

describe('update metrics textfile', () => {
  it('renders the installed versions as info labels, timestamps and counters', () => {
    const text = renderMetrics({
      installed: { zeta: '1.0.0', authentik: '2.1.0-rc.1' },
      lastCheck: 1_700_000_100,
      lastSuccess: 1_700_000_000,
      successTotal: 4,
      failureTotal: 1,
    });
    const samples = text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(samples).toEqual([
      'rick_bundle_info{bundle="authentik",version="2.1.0-rc.1"} 1',
      'rick_bundle_info{bundle="zeta",version="1.0.0"} 1',
      'rick_update_last_check_timestamp_seconds 1700000100',
      'rick_update_last_success_timestamp_seconds 1700000000',
      'rick_update_success_total 4',
      'rick_update_failure_total 1',
    ]);
    expect(text).toContain('# TYPE rick_update_failure_total counter');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('reads back its own counters and treats garbage as zero', () => {
    const text = renderMetrics({
      installed: {},
      lastCheck: 5,
      lastSuccess: 3,
      successTotal: 7,
      failureTotal: 2,
      indexNotYetValidTotal: 4,
    });
    expect(parsePreviousMetrics(text)).toEqual({
      lastSuccess: 3,
      successTotal: 7,
      failureTotal: 2,
      indexNotYetValidTotal: 4,
    });
    expect(parsePreviousMetrics(undefined)).toEqual({
      lastSuccess: 0,
      successTotal: 0,
      failureTotal: 0,
      indexNotYetValidTotal: 0,
    });
    expect(parsePreviousMetrics('rick_update_success_total -4\n').successTotal).toBe(0);
  });

  it('renders the index expiry, serial and yanked live versions, and reads them back', () => {
    const m = {
      installed: { authentik: '2.1.0' },
      lastCheck: 10,
      lastSuccess: 10,
      successTotal: 1,
      failureTotal: 0,
      index: { expires: 1_767_830_400, serial: 1_767_225_600, yanked: { authentik: '2.1.0' } },
    };
    const text = renderMetrics(m);
    const samples = text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(samples.slice(-3)).toEqual([
      'rick_index_expires_timestamp_seconds 1767830400',
      'rick_index_serial 1767225600',
      'rick_bundle_yanked{bundle="authentik",version="2.1.0"} 1',
    ]);
    expect(text).toContain('# TYPE rick_index_expires_timestamp_seconds gauge');
    expect(parsePreviousIndexMetrics(text)).toEqual({ installed: m.installed, index: m.index });
    expect(
      parsePreviousIndexMetrics(renderMetrics({ ...m, index: undefined })).index,
    ).toBeUndefined();
  });
});
