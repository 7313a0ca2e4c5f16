import type { MetricsSource } from '../contract/index.js';
import type { QueryLog } from '../services/query-log.js';
import type { ScrapedSeries, ScrapeSnapshot } from '../services/scrape.js';

export interface CounterIncrease {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** An observation window as a provider opened it; plain data, so a stage can hand it to a later one. */
export interface MetricsWindow {
  start: number;
  /** Direct scrape: the counters at the start (a scrape can only measure a window it watched). */
  baseline?: ScrapeSnapshot;
  /**
   * Direct scrape of a closed window: the counters' increase from the start to the close (the series and
   * labels the closing queries read, those that moved), so a reader in another process, later, reads exactly this
   * window. Replaces `baseline`.
   */
  increase?: ScrapedSeries[];
  /** With `increase`: the interval its two snapshots cover (the trace and load queries are bounded by it). */
  covered?: CoveredInterval;
  /** Why the window could not be closed (its counters were unreadable then): what a later reader reports. */
  problem?: string;
}

/** Counter samples to read: `series` (a sample name), restricted to `match`, summed by `by`. */
export interface CounterQuery {
  series: string;
  match?: Record<string, string>;
  by: string[];
}

export interface IncreaseOptions {
  log?: QueryLog;
  onNote?: (m: string) => void;
  /** Wait until the backend has seen past `end` (default true); false reads what it has now. */
  settle?: boolean;
  /**
   * Told the interval the increases actually cover (epoch ms): when the two snapshots were taken, and how
   * uncertain each edge is. Other sources (traces, the load) are bounded by it.
   */
  onInterval?: (i: CoveredInterval) => void;
}

export interface CoveredInterval {
  start: number;
  end: number;
  uncertaintyMs: number;
}

/** What a pre-flight check learns from a backend before any traffic moves. */
export interface ProviderInspection {
  /** What was reached, for the "reachable" check ("http://prometheus:9090: 12 active targets"). */
  detail: string;
  /** Label sets of the series the query selects (Prometheus: over the last hour; a scrape: now). */
  labelSets: Array<Record<string, string>>;
  /** The longest scrape interval the backend reports for its targets, when it reports one. */
  scrapeIntervalMs?: number;
}

/**
 * Where metric numbers come from (Flagger's "providers"): Prometheus' HTTP API, or a direct scrape of
 * Prometheus text endpoints. Adding a backend (Datadog, CloudWatch) is a new file implementing this and one
 * line in `index.ts`.
 */
export interface MetricsProvider {
  readonly source: MetricsSource;
  /** The backend in words, for checks and messages ("Prometheus", "metrics endpoints"). */
  readonly system: string;
  /** For messages and the evidence bundle (never with credentials). */
  readonly url: string;
  /** How far behind the backend may be (Prometheus' scrape interval); recorded with the evidence. */
  readonly scrapeIntervalMs?: number;
  /** Open a window now. */
  open(): Promise<MetricsWindow>;
  /**
   * Close a window now, as plain data a later reader judges: a backend that keeps history (Prometheus)
   * needs nothing more; a direct scrape records the increase of the counters `queries` read (summed by
   * their labels), since it cannot read the past. Later queries of the window read those labels only.
   */
  close(w: MetricsWindow, queries: CounterQuery[]): Promise<MetricsWindow>;
  /**
   * Pre-flight: is the backend reachable, which series match `query` (its `by` is ignored), how often it
   * scrapes. Throws (the backend's error, naming it) when it cannot be read.
   */
  inspect(query: Omit<CounterQuery, 'by'>): Promise<ProviderInspection>;
  /** Increase of each queried counter series from the window's start to `end`; empty queries give nothing. */
  increases(
    w: MetricsWindow,
    end: number,
    queries: CounterQuery[],
    opts?: IncreaseOptions,
  ): Promise<CounterIncrease[]>;
}
