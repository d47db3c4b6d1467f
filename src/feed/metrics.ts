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
  /** Indexes refused as issued in the future (index feeds only). */
  indexNotYetValidTotal?: number;
  /** The signed release index the host follows (index feeds only). */
  index?: {
    /** Seconds since the epoch when the index last verified expires. */
    expires: number;
    serial: number;
    /** Installed versions that the index yanks, per bundle. */
    yanked: Record<string, string>;
  };
  /** Version held per bundle, waiting for the operator to grant what it needs. */
  held?: Record<string, string>;
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
    '# HELP rick_update_held A release held because it needs more than this host grants its bundle.',
    '# TYPE rick_update_held gauge',
    ...Object.keys(m.held ?? {})
      .sort()
      .map(
        (bundle) =>
          `rick_update_held{bundle="${escapeLabel(bundle)}",version="${escapeLabel(m.held![bundle]!)}"} 1`,
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
  if (m.indexNotYetValidTotal !== undefined) {
    lines.push(
      "# HELP rick_index_not_yet_valid_total Release indexes refused because they were issued more than an hour ahead of this host's clock.",
      '# TYPE rick_index_not_yet_valid_total counter',
      `rick_index_not_yet_valid_total ${m.indexNotYetValidTotal}`,
    );
  }
  if (m.index) {
    const yanked = m.index.yanked;
    lines.push(
      '# HELP rick_index_expires_timestamp_seconds When the signed release index this host verified last expires; past it the host refuses the index (freeze).',
      '# TYPE rick_index_expires_timestamp_seconds gauge',
      `rick_index_expires_timestamp_seconds ${m.index.expires}`,
      '# HELP rick_index_serial Serial of the signed release index this host verified last.',
      '# TYPE rick_index_serial gauge',
      `rick_index_serial ${m.index.serial}`,
      '# HELP rick_bundle_yanked Installed version of a bundle that the release index yanks.',
      '# TYPE rick_bundle_yanked gauge',
      ...Object.keys(yanked)
        .sort()
        .map(
          (bundle) =>
            `rick_bundle_yanked{bundle="${escapeLabel(bundle)}",version="${escapeLabel(yanked[bundle]!)}"} 1`,
        ),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Reads back what the previous textfile recorded; anything unreadable counts as zero. */
export function parsePreviousMetrics(text: string | undefined): {
  lastSuccess: number;
  successTotal: number;
  failureTotal: number;
  indexNotYetValidTotal: number;
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
    indexNotYetValidTotal: value('rick_index_not_yet_valid_total'),
  };
}

/**
 * What the previous textfile recorded of the index, so that a tick that
 * could not read the index (the feed unreachable) keeps reporting when the
 * last one verified expires, and the freeze alert still fires.
 */
export function parsePreviousIndexMetrics(text: string | undefined): {
  installed: Record<string, string>;
  index: UpdateMetrics['index'];
} {
  const labelled = (name: string) => {
    const out: Record<string, string> = {};
    const pattern = new RegExp(`^${name}\\{bundle="([^"]*)",version="([^"]*)"\\} 1$`, 'gm');
    for (const m of text?.matchAll(pattern) ?? []) out[m[1]!] = m[2]!;
    return out;
  };
  const expires = text?.match(/^rick_index_expires_timestamp_seconds ([0-9]+)$/m)?.[1];
  const serial = text?.match(/^rick_index_serial ([0-9]+)$/m)?.[1];
  return {
    installed: labelled('rick_bundle_info'),
    index:
      expires === undefined
        ? undefined
        : {
            expires: Number(expires),
            serial: Number(serial ?? 0),
            yanked: labelled('rick_bundle_yanked'),
          },
  };
}
