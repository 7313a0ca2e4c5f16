/**
 * Flag values checked before anything runs (exit 2 naming the flag and what it expects): numbers that
 * must be integers in a range, durations, URLs. `Number('')` is 0, so nothing here trusts `Number` alone.
 */
import { InvalidInputError } from '../util/errors.js';
import { MAX_WINDOW_MS } from '../spec/limits.js';
import { DURATION_PATTERN, parseDurationMs } from '../util/units.js';

export function parseIntegerFlag(
  flag: string,
  value: string | undefined,
  range: { min?: number; max?: number } = {},
): number {
  const text = (value ?? '').trim();
  const bounds =
    `${range.min !== undefined ? `from ${range.min}` : ''}${range.max !== undefined ? ` to ${range.max}` : ''}`.trim();
  if (!/^-?\d+$/.test(text))
    throw new InvalidInputError(
      `${flag} must be an integer${bounds ? ` ${bounds}` : ''}, got "${value ?? ''}"`,
    );
  const n = Number(text);
  if ((range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max))
    throw new InvalidInputError(`${flag} must be an integer ${bounds}, got ${n}`);
  return n;
}

/** A duration such as 30s, 2m or 1h, longer than 0 and at most `maxMs` (default 24h): exit 2 otherwise. */
export function parseDurationFlag(flag: string, value: string, maxMs = MAX_WINDOW_MS): number {
  if (!new RegExp(DURATION_PATTERN).test(value.trim()))
    throw new InvalidInputError(`${flag} must be a duration such as 500ms, 30s, 2m or 1h, got "${value}"`);
  const ms = parseDurationMs(value.trim());
  if (!(ms > 0)) throw new InvalidInputError(`${flag} must be longer than 0, got "${value}"`);
  if (ms > maxMs)
    throw new InvalidInputError(
      `${flag} must be at most ${maxMs % 3_600_000 ? `${maxMs / 1000}s` : `${maxMs / 3_600_000}h`}, got "${value}"`,
    );
  return ms;
}

/** A decimal number in a range (`Number('')` is 0 and `Number('1e999')` Infinity: neither gets through). */
export function parseNumberFlag(
  flag: string,
  value: string,
  range: { min?: number; max?: number; exclusiveMin?: boolean; integer?: boolean; unit?: string } = {},
): number {
  const text = value.trim();
  const kind = range.integer ? 'a whole number' : 'a number';
  const bounds = [
    range.min !== undefined ? `${range.exclusiveMin ? 'above' : 'from'} ${range.min}` : '',
    range.max !== undefined ? `${range.min !== undefined ? 'to' : 'at most'} ${range.max}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  const expected = `${flag} must be ${kind}${range.unit ? ` of ${range.unit}` : ''}${bounds ? ` ${bounds}` : ''}`;
  if (!(range.integer ? /^\d+$/ : /^\d+(\.\d+)?$/).test(text))
    throw new InvalidInputError(`${expected}, got "${value}"`);
  const n = Number(text);
  const low = range.min !== undefined && (range.exclusiveMin ? n <= range.min : n < range.min);
  if (low || (range.max !== undefined && n > range.max))
    throw new InvalidInputError(`${expected}, got ${text}`);
  return n;
}

/** An http(s) URL with a host: exit 2 otherwise (before any connection is tried). */
export function parseUrlFlag(flag: string, value: string, protocols: string[] = ['http:', 'https:']): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new InvalidInputError(`${flag} must be a URL such as ${protocols[0]}//host:port, got "${value}"`);
  }
  if (!protocols.includes(u.protocol) || !u.hostname)
    throw new InvalidInputError(
      `${flag} must be a ${protocols.map((p) => p.replace(':', '')).join(' or ')} URL with a host, got "${u.protocol}//${u.host}"`,
    );
  return value;
}

/** Each value of a repeatable URL flag (`--scrape <url...>`), checked as it is parsed: exit 2 naming the flag. */
export const collectUrlFlag =
  (flag: string) =>
  (value: string, previous: string[] | undefined): string[] => [
    ...(previous ?? []),
    parseUrlFlag(flag, value),
  ];

const HOST =
  /^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$/;

/**
 * A comma-separated host:port list (JMeter's `-R` remote engines): every entry a host name or IPv4 address
 * and a port from 1 to 65535. JMeter would otherwise start, fail to configure an engine and leave its files.
 */
export function parseHostPortListFlag(flag: string, value: string): string[] {
  const entries = value.split(',').map((s) => s.trim());
  const bad = entries.flatMap((e) => {
    const m = /^(.*):(\d{1,5})$/.exec(e);
    if (!e) return [`an empty entry`];
    if (!m) return [`"${e.slice(0, 80)}" has no :port`];
    if (!HOST.test(m[1])) return [`"${m[1].slice(0, 80)}" is not a host name or IPv4 address`];
    if (Number(m[2]) < 1 || Number(m[2]) > 65535) return [`port ${m[2]} of "${e}" is not from 1 to 65535`];
    return [];
  });
  if (bad.length)
    throw new InvalidInputError(
      `${flag} must be a comma-separated list of host:port such as 10.0.0.5:1099,10.0.0.6:1099, got "${value.slice(0, 120)}": ${bad.join('; ')}`,
    );
  return entries;
}
