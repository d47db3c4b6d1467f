/**
 * A reader that goes away (`rick-install status | head -1`) closes the pipe
 * under us, and a terminal whose SSH session dropped (SIGHUP, see
 * signals.ts) fails writes with EIO. The rest of that output is dropped
 * without a word and the command runs on to its end: an install stopped
 * half-way because a pager closed, or one whose restore after SIGHUP died
 * on its own log line, would be worse than output nobody reads. Any other
 * error on the standard streams stays fatal.
 */
export function dropOutputOnClosedPipe(
  streams: readonly NodeJS.WriteStream[] = [process.stdout, process.stderr],
): void {
  for (const stream of streams) {
    if (stream.listenerCount('error') > 0) continue;
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'EIO') throw error;
    });
  }
}
