/**
 * The Prometheus node-exporter textfile of `rick-install update`, pure.
 * Counters survive between runs by being read back from the previous
 * textfile: losing the file is a counter reset, which Prometheus handles.
 */

export interface UpdateMetrics {
  /** Installed version per followed bundle (absent: not installed). */
  installed: Record<string, string>;
  /** Seconds since the epoch. */
  lastCheck: number;
  /** Seconds since the epoch of the last run that ended without an error; 0 if none. */
  lastSuccess: number;
  successTotal: number;
  failureTotal: number;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function renderMetrics(m: UpdateMetrics): string {
  const lines = [
    '# HELP rick_bundle_info Installed version of a bundle followed by rick-install update.',
    '# TYPE rick_bundle_info gauge',
    ...Object.keys(m.installed)
      .sort()
      .map(
        (bundle) =>
          `rick_bundle_info{bundle="${escapeLabel(bundle)}",version="${escapeLabel(m.installed[bundle]!)}"} 1`,
      ),
    '# HELP rick_update_last_check_timestamp_seconds When rick-install update last checked the feed.',
    '# TYPE rick_update_last_check_timestamp_seconds gauge',
    `rick_update_last_check_timestamp_seconds ${m.lastCheck}`,
    '# HELP rick_update_last_success_timestamp_seconds When rick-install update last ended without an error.',
    '# TYPE rick_update_last_success_timestamp_seconds gauge',
    `rick_update_last_success_timestamp_seconds ${m.lastSuccess}`,
    '# HELP rick_update_success_total Runs of rick-install update that ended without an error.',
    '# TYPE rick_update_success_total counter',
    `rick_update_success_total ${m.successTotal}`,
    '# HELP rick_update_failure_total Runs of rick-install update that ended with an error (feed, download, install or rollback).',
    '# TYPE rick_update_failure_total counter',
    `rick_update_failure_total ${m.failureTotal}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** Reads back what the previous textfile recorded; anything unreadable counts as zero. */
export function parsePreviousMetrics(text: string | undefined): {
  lastSuccess: number;
  successTotal: number;
  failureTotal: number;
} {
  const value = (name: string): number => {
    const match = text?.match(new RegExp(`^${name} ([0-9.e+]+)$`, 'm'));
    const n = match ? Number(match[1]) : 0;
    return Number.isFinite(n) && n >= 0 ? n : 0;
  };
  return {
    lastSuccess: value('rick_update_last_success_timestamp_seconds'),
    successTotal: value('rick_update_success_total'),
    failureTotal: value('rick_update_failure_total'),
  };
}
