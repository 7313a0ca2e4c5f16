import * as yaml from 'js-yaml';
import { redact } from '../util/redact.js';
import { streamClosed } from './interrupt.js';

/** Output formats every command accepts with --output. Data goes to stdout, diagnostics to stderr. */
export type OutputFormat = 'text' | 'json' | 'yaml';
export const OUTPUT_FORMATS: OutputFormat[] = ['text', 'json', 'yaml'];

export function parseOutputFormat(value: string): OutputFormat {
  if (!(OUTPUT_FORMATS as string[]).includes(value)) {
    throw new Error(`--output must be one of ${OUTPUT_FORMATS.join(', ')}, got "${value}"`);
  }
  return value as OutputFormat;
}

/** Print a result in the chosen format; `text` renders with the command's own human layout. */
export function printResult<T>(format: OutputFormat, data: T, text: (data: T) => string): void {
  let out: string;
  if (format === 'json') out = JSON.stringify(data, null, 2);
  else if (format === 'yaml') out = yaml.dump(data, { noRefs: true, lineWidth: 120 });
  else out = text(data);
  if (!streamClosed('stdout')) process.stdout.write(redact(out.endsWith('\n') ? out : out + '\n'));
}

/** Progress and notes for a person: stderr, so stdout stays machine-readable. */
export function note(message: string): void {
  if (!streamClosed('stderr')) process.stderr.write(redact(message) + '\n');
}

/** A plain-text table with aligned columns. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (c ?? '').padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
