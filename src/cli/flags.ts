/**
 * Flag values checked before anything runs (exit 2 naming the flag and what it expects): numbers that
 * must be integers in a range, durations, URLs. `Number('')` is 0, so nothing here trusts `Number` alone.
 */
import { InvalidInputError } from '../util/errors.js';
import { DURATION_PATTERN, parseDurationMs } from '../util/units.js';

export function parseIntegerFlag(flag: string, value: string | undefined, range: { min?: number; max?: number } = {}): number {
  const text = (value ?? '').trim();
  const bounds = `${range.min !== undefined ? `from ${range.min}` : ''}${range.max !== undefined ? ` to ${range.max}` : ''}`.trim();
  if (!/^-?\d+$/.test(text)) throw new InvalidInputError(`${flag} must be an integer${bounds ? ` ${bounds}` : ''}, got "${value ?? ''}"`);
  const n = Number(text);
  if ((range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max)) throw new InvalidInputError(`${flag} must be an integer ${bounds}, got ${n}`);
  return n;
}

/** A duration such as 30s, 2m, 1h30m: exit 2 otherwise. */
export function parseDurationFlag(flag: string, value: string): number {
  if (!new RegExp(DURATION_PATTERN).test(value.trim())) throw new InvalidInputError(`${flag} must be a duration such as 500ms, 30s, 2m or 1h, got "${value}"`);
  const ms = parseDurationMs(value.trim());
  if (!(ms > 0)) throw new InvalidInputError(`${flag} must be longer than 0, got "${value}"`);
  return ms;
}

/** An http(s) URL with a host: exit 2 otherwise (before any connection is tried). */
export function parseUrlFlag(flag: string, value: string, protocols: string[] = ['http:', 'https:']): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new InvalidInputError(`${flag} must be a URL such as ${protocols[0]}//host:port, got "${value}"`);
  }
  if (!protocols.includes(u.protocol) || !u.hostname) throw new InvalidInputError(`${flag} must be a ${protocols.map((p) => p.replace(':', '')).join(' or ')} URL with a host, got "${u.protocol}//${u.host}"`);
  return value;
}
