/**
 * What an evidence source ran and what came back: every adapter that feeds the gate appends one record per
 * query, scrape or page, so the evidence bundle can show its work.
 */
export interface QueryRecord {
  query: string;
  /** When it ran (epoch ms). */
  at: number;
  ok: boolean;
  /** Short description of the answer ("12 series", "HTTP 503", "4 pages, 812 traces"). */
  result: string;
}

export type QueryLog = QueryRecord[];

/** Run `fn`, appending a record of it to `log` whether it succeeds or throws. */
export async function logged<T>(
  log: QueryLog | undefined,
  query: string,
  fn: () => Promise<T>,
  describe: (v: T) => string,
): Promise<T> {
  const at = Date.now();
  try {
    const v = await fn();
    log?.push({ query, at, ok: true, result: describe(v) });
    return v;
  } catch (err) {
    log?.push({
      query,
      at,
      ok: false,
      result: err instanceof Error ? err.message.split('\n')[0] : String(err),
    });
    throw err;
  }
}
