import type { InputProblem } from '../util/errors.js';
import { formatDuration, parseDurationMs } from '../util/units.js';

/**
 * Range checks a JSON Schema pattern cannot express, shared by the spec and load-plan validators: durations
 * within (0, 24h], Kubernetes label keys and values, regular expressions that compile, URLs whose port
 * exists. Each returns the problem's message, or undefined when the value is fine.
 */
export const MAX_WINDOW_MS = 24 * 3_600_000;

/** A duration string in (0, max]: "0s" never ends a window, "99999999999h" never starts one. */
export function durationRangeProblem(value: unknown, maxMs = MAX_WINDOW_MS): string | undefined {
  if (typeof value !== 'string') return undefined; // the schema reports the type
  let ms: number;
  try {
    ms = parseDurationMs(value);
  } catch {
    return undefined; // the schema reports the pattern
  }
  if (ms > 0 && ms <= maxMs) return undefined;
  return `expected a duration longer than 0 and at most ${maxMs === MAX_WINDOW_MS ? '24h' : formatDuration(maxMs)}, found "${value}"`;
}

/** Label keys: an optional DNS-subdomain prefix (≤ 253) and "/", then a name of ≤ 63 (Kubernetes' rules). */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (
    prefix !== undefined &&
    (prefix.length === 0 || prefix.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(prefix))
  ) {
    return `expected a label key prefix that is a DNS subdomain of at most 253 characters (e.g. example.com/), found "${prefix.slice(0, 60)}"`;
  }
  if (name.length === 0 || name.length > 63 || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name)) {
    return `expected a label name of 1 to 63 letters, digits, "-", "_" or "." starting and ending with a letter or digit, found "${name.slice(0, 60)}"${name.length > 63 ? ` (${name.length} characters)` : ''}`;
  }
  return undefined;
}

export function labelValueProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined; // the schema reports the type
  if (value.length <= 63 && /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(value)) return undefined;
  return `expected a label value of at most 63 letters, digits, "-", "_" or "." starting and ending with a letter or digit, found "${value.slice(0, 60)}"${value.length > 63 ? ` (${value.length} characters)` : ''}`;
}

/** A regular expression Envoy can use: it must compile (RE2 is stricter still; JS syntax errors are certain errors). */
export function regexProblem(pattern: unknown): string | undefined {
  if (typeof pattern !== 'string') return undefined;
  try {
    new RegExp(pattern);
    return undefined;
  } catch (err) {
    const why = (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    return `expected a regular expression that compiles, found "${pattern.slice(0, 60)}" (${why})`;
  }
}

/** An http(s) URL (scheme optional) whose host and port a client can connect to. */
export function urlProblem(value: unknown, schemeOptional = false): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = schemeOptional && !/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? `http://${value}` : value;
  const port = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#]*):(\d+)/i.exec(text)?.[1];
  if (port !== undefined && Number(port) > 65535)
    return `expected a port from 1 to 65535, found ${port} in "${value.slice(0, 80)}"`;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return `expected a URL such as http://host:8080/path, found "${value.slice(0, 80)}"`;
  }
  if (!/^https?:$/.test(u.protocol))
    return `expected an http:// or https:// URL, found "${value.slice(0, 80)}"`;
  if (!u.hostname) return `expected a URL with a host, found "${value.slice(0, 80)}"`;
  return undefined;
}

/** Push a problem for each (path, message) pair whose message is defined. */
export function collect(
  file: string | undefined,
  problems: InputProblem[],
  checks: Array<[string, string | undefined]>,
): void {
  for (const [path, message] of checks) if (message) problems.push({ file, path, message });
}
