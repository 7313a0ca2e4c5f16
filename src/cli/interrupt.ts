/**
 * Interrupts of a running command: SIGINT, SIGTERM, and a reader that went away (EPIPE on stdout or
 * stderr, as `clover-cd release … 2>&1 | head` does). A command with something to make safe (a release
 * with traffic on the candidate) registers a handler and finishes its rollback before exiting 130; with
 * no handler, a broken pipe just ends the process quietly, like any Unix filter.
 */
const handlers = new Set<(why: string) => void>();
const closed = { stdout: false, stderr: false };

export const streamClosed = (stream: 'stdout' | 'stderr'): boolean => closed[stream];

/** Call `fn` on the first interrupt while registered; returns the function that unregisters it. */
export function onInterrupt(fn: (why: string) => void): () => void {
  let fired = false;
  const once = (why: string) => {
    if (fired) return;
    fired = true;
    fn(why);
  };
  const sigint = () => once('interrupted (SIGINT)');
  const sigterm = () => once('terminated (SIGTERM)');
  handlers.add(once);
  // once: a second Ctrl-C ends the process at once (the next run finishes the rollback).
  process.once('SIGINT', sigint);
  process.once('SIGTERM', sigterm);
  return () => {
    handlers.delete(once);
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  };
}

/** Installed once by the CLI entry point. */
export function watchPipes(): void {
  for (const name of ['stdout', 'stderr'] as const) {
    process[name].on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      closed[name] = true;
      if (handlers.size) [...handlers].forEach((h) => h(`the reader of ${name} went away (broken pipe)`));
      else process.exit(process.exitCode ?? 0);
    });
  }
}
