/**
 * Results on a log: a controller run with `load run --stream-results` writes every JTL line (header and rows)
 * to its output as `jtl|<line>` while the run goes, so whoever reads that output (a cluster's pod log) gets
 * the JTL as it grows and writes it into a local file for the same parser, report and completeness check as
 * a local run.
 */
import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';

export const STREAMED_LINE_PREFIX = 'jtl|';

/**
 * Follow a growing file (JMeter appends to its JTL): every complete line once, in order; `stop()` reads
 * what is left, the last line even without its newline, then stops.
 */
export function tailFile(file: string, onLine: (line: string) => void, intervalMs = 200): { stop(): void } {
  let offset = 0;
  let partial = '';
  const read = (final: boolean) => {
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      return; // not written yet
    }
    if (size > offset) {
      const fd = openSync(file, 'r');
      try {
        const buf = Buffer.alloc(size - offset);
        offset += readSync(fd, buf, 0, buf.length, offset);
        const lines = (partial + buf.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        lines.forEach(onLine);
      } finally {
        closeSync(fd);
      }
    }
    if (final && partial) onLine(partial);
  };
  const timer = setInterval(() => read(false), intervalMs);
  return {
    stop() {
      clearInterval(timer);
      read(true);
    },
  };
}

/** The receiving side: streamed lines into a local JTL, counting rows and failed rows for progress. */
export class StreamedJtl {
  rows = 0;
  errors = 0;
  private successColumn = -1;
  private readonly fd: number;
  constructor(readonly file: string) {
    this.fd = openSync(file, 'wx');
  }
  /** One line of the controller's output; false when it is not a results line. */
  line(raw: string): boolean {
    if (!raw.startsWith(STREAMED_LINE_PREFIX)) return false;
    const line = raw.slice(STREAMED_LINE_PREFIX.length).replace(/\r$/, '');
    writeSync(this.fd, `${line}\n`);
    if (line.startsWith('timeStamp,')) this.successColumn = line.split(',').indexOf('success');
    else if (line) {
      this.rows++;
      // Progress only: a quoted field with a comma may shift the column; the final analysis parses properly.
      if (this.successColumn >= 0 && line.split(',')[this.successColumn] === 'false') this.errors++;
    }
    return true;
  }
  close(): void {
    closeSync(this.fd);
  }
}
