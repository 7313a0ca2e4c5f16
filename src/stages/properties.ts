import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { redact } from '../util/redact.js';

/**
 * Stage results for Spinnaker, as key=value properties:
 * - `file`: a Java properties file, the `propertyFile` Spinnaker's Jenkins stage reads from the build's
 *   archived artifacts; each key becomes a stage output, usable as `${KEY}` in later stages;
 * - `spinnaker-log`: `SPINNAKER_PROPERTY_<KEY>=value` lines, which a Kubernetes Run Job stage reads
 *   from the pod's log into its outputs.
 * Keys are upper-case identifiers so `${KEY}` parses in SpEL; values are redacted before they are written.
 * Commands with `--properties FILE` call `writeProperties`; what goes in is `stageProperties(...)`.
 */
export type PropertyValue = string | number | boolean | undefined | null;
export type PropertyFormat = 'file' | 'spinnaker-log';

const KEY = /^[A-Z][A-Z0-9_]*$/;

/** Java .properties escaping (ISO-8859-1 safe: other characters as \uXXXX). */
function escapeValue(v: string): string {
  let out = '';
  for (const [i, ch] of [...v].entries()) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\f') out += '\\f';
    else if (ch === ' ' && i === 0) out += '\\ ';
    else if ('=:#!'.includes(ch)) out += `\\${ch}`;
    else if (code < 0x20 || code > 0x7e) {
      const units =
        code > 0xffff ? [0xd800 + ((code - 0x10000) >> 10), 0xdc00 + ((code - 0x10000) & 0x3ff)] : [code];
      out += units.map((u) => `\\u${u.toString(16).padStart(4, '0')}`).join('');
    } else out += ch;
  }
  return out;
}

export function formatProperties(
  props: Record<string, PropertyValue>,
  format: PropertyFormat = 'file',
): string {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(props)) {
    if (!KEY.test(key))
      throw new RangeError(
        `property key "${key}" must be upper-case letters, digits and "_" (so \${${key}} parses in SpEL)`,
      );
    if (value === undefined || value === null) continue;
    const text = redact(String(value));
    // A log line cannot hold a newline; Run Job reads one line per property.
    lines.push(
      format === 'file'
        ? `${key}=${escapeValue(text)}`
        : `SPINNAKER_PROPERTY_${key}=${text.replace(/\r?\n/g, ' ')}`,
    );
  }
  return lines.join('\n') + '\n';
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir never returns for a path under /proc (ENOENT on
 * an existing parent makes it retry the parent forever).
 */
function makeFolders(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) mkdirSync(d);
}

/** Write the properties file (creating its folder); Spinnaker fails the stage on a missing or empty one. */
export function writeProperties(file: string, props: Record<string, PropertyValue>): void {
  makeFolders(dirname(resolve(file)));
  writeFileSync(file, `# clover-cd stage result\n${formatProperties(props, 'file')}`);
}

/** The properties every stage command writes: exit code, status, and what the stage did. */
export function stageProperties(r: {
  action: string;
  release: string;
  exitCode: number;
  status: string;
  summary?: string;
  weight?: number;
  verdict?: string;
  evidence?: string;
  junit?: string;
  extra?: Record<string, PropertyValue>;
}): Record<string, PropertyValue> {
  return {
    CLOVER_CD_ACTION: r.action,
    CLOVER_CD_RELEASE: r.release,
    CLOVER_CD_EXIT_CODE: r.exitCode,
    CLOVER_CD_STATUS: r.status,
    CLOVER_CD_SUMMARY: r.summary,
    CLOVER_CD_WEIGHT: r.weight,
    CLOVER_CD_VERDICT: r.verdict,
    CLOVER_CD_EVIDENCE: r.evidence,
    CLOVER_CD_JUNIT: r.junit,
    ...r.extra,
  };
}
