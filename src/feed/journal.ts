/**
 * Log lines at warning priority. Under systemd, what a service writes to
 * stdout reaches the journal at the unit's SyslogLevel= (info), unless the
 * line starts with a kernel-style priority prefix such as `<4>` for warning
 * (SyslogLevelPrefix=, on by default; sd-daemon(3)). The prefix is written
 * only when stdout is that journal stream: systemd names the stream's device
 * and inode in $JOURNAL_STREAM (systemd.exec(5)), and a descriptor that was
 * redirected elsewhere no longer matches them. On a terminal or in a pipe
 * the line reads `warning: …` instead.
 */
import { fstatSync } from 'node:fs';

/** Whether file descriptor `fd` is the journal stream systemd set up for this service. */
export function isJournalStream(env: NodeJS.ProcessEnv, fd = 1): boolean {
  const stream = env.JOURNAL_STREAM;
  if (!stream) return false;
  const [dev, ino] = stream.split(':');
  try {
    const st = fstatSync(fd, { bigint: true });
    return String(st.dev) === dev && String(st.ino) === ino;
  } catch {
    return false;
  }
}

/** The line as written at warning priority: `<4>line` to the journal, `warning: line` elsewhere. */
export function warningLine(line: string, journal: boolean): string {
  return journal ? `<4>${line}` : `warning: ${line}`;
}

/** Where a tick's lines go: `log`, and `warn` for lines at warning priority when the caller has one. */
export interface WarningLog {
  log: (line: string) => void;
  warn?: (line: string) => void;
}

/** Logs a line at warning priority: through `warn`, else `log` with a `warning: ` prefix. */
export function warn(deps: WarningLog, line: string): void {
  if (deps.warn) deps.warn(line);
  else deps.log(warningLine(line, false));
}
