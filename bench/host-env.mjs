// The environment the measured processes run in, for the benchmarks that
// compare a rick-install run with a bare `node -e ''` start.
//
// Node reads several NODE_* variables while it starts, before any program
// code runs, and some are expensive: NODE_EXTRA_CA_CERTS makes every start
// load and parse a certificate bundle (a 200 KB bundle adds about 50 ms to a
// 30 ms start). A host runs rick-install from a systemd unit or a root shell
// without them, and a constant added to both sides of a ratio flatters it,
// so the benchmarks drop every NODE_* variable for both sides alike and say
// which they dropped.

/**
 * @param {Record<string, string | undefined>} base
 * @returns {{ env: Record<string, string | undefined>, dropped: string[] }}
 */
export function hostEnv(base = process.env) {
  const env = { ...base };
  const dropped = [];
  for (const name of Object.keys(env)) {
    if (name.startsWith('NODE_')) {
      dropped.push(name);
      delete env[name];
    }
  }
  return { env, dropped: dropped.sort() };
}

/** One line for a benchmark's report. */
export function describeDropped(dropped) {
  return dropped.length === 0
    ? 'node start variables: none set'
    : `node start variables dropped for every measured process (hosts run without them): ${dropped.join(', ')}`;
}
