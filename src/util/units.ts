/** Parsing of the human units used in specs and plans: durations ("90s", "2m", "500ms") and percentages ("1.5%"). */

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const FACTOR: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export const DURATION_PATTERN = '^\\d+(\\.\\d+)?(ms|s|m|h)$';
export const PERCENT_PATTERN = '^\\d+(\\.\\d+)?%$';

/** Milliseconds of a duration string; a bare number is seconds (as in Spinnaker's waitTime). */
export function parseDurationMs(value: string | number): number {
  if (typeof value === 'number') return value * 1000;
  const m = DURATION.exec(value.trim());
  if (!m) throw new RangeError(`not a duration: "${value}" (expected e.g. 500ms, 30s, 2m, 1h)`);
  return Number(m[1]) * FACTOR[m[2]];
}

/** Fraction (0..1) of a percentage string such as "1.5%". A bare number is taken as a fraction. */
export function parsePercent(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+(?:\.\d+)?)%$/.exec(value.trim());
  if (!m) throw new RangeError(`not a percentage: "${value}" (expected e.g. 1%, 0.5%)`);
  return Number(m[1]) / 100;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return s ? `${m}m${s}s` : `${m}m`;
}
