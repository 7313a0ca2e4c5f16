import { evaluateCriteria, type CriterionResult } from './criteria.js';
import type { JtlAnalysis } from './jtl.js';
import type { LabelStats, LoadSummary } from './types.js';
import { handlebars } from '../util/lazy-packages.js';

/** What `load run` / `load report` print: statistics, expected vs received, criteria, and the outcome. */
export interface LoadReport {
  jtl: string;
  summary: LoadSummary;
  expected?: number;
  received: number;
  /** Labels whose count differs from the plan's expectation. */
  countMismatches: Array<{ label: string; expected: number; received: number }>;
  criteria: CriterionResult[];
  /** false when a criterion tripped */
  passed: boolean;
  interrupted?: boolean;
}

export function buildReport(
  jtl: string,
  analysis: JtlAnalysis,
  opts: {
    criteria?: string[];
    expected?: { total: number; byLabel: Record<string, number> };
    interrupted?: boolean;
  } = {},
): LoadReport {
  const criteria = evaluateCriteria(opts.criteria ?? [], analysis, opts.expected);
  const countMismatches = Object.entries(opts.expected?.byLabel ?? {})
    .map(([label, expected]) => ({ label, expected, received: analysis.summary.labels[label]?.count ?? 0 }))
    .filter((m) => m.expected !== m.received);
  return {
    jtl,
    summary: analysis.summary,
    expected: opts.expected?.total,
    received: analysis.summary.total.count,
    countMismatches,
    criteria,
    passed: criteria.every((c) => !c.tripped),
    interrupted: opts.interrupted || undefined,
  };
}

const ms = (v: number) => `${Math.round(v)}`;
const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
const top = (r: Record<string, number>) =>
  Object.entries(r)
    .sort(([, a], [, b]) => b - a)
    .map(([k, v]) => `${k || '(none)'}:${v}`)
    .join(' ');

/** The statistics table of a load report, the same in the text, the plain HTML and the charted HTML report. */
export const STATS_COLUMNS = [
  'label',
  'samples',
  'errors',
  'error%',
  'min',
  'mean',
  'p50',
  'p90',
  'p95',
  'p99',
  'max',
  'req/s',
];

/** One row of that table: the label, then its figures as printed. */
export function statsRow(name: string, s: LabelStats): string[] {
  return [
    name,
    String(s.count),
    String(s.errors),
    pct(s.errorRate),
    ms(s.min),
    ms(s.mean),
    ms(s.p50),
    ms(s.p90),
    ms(s.p95),
    ms(s.p99),
    ms(s.max),
    s.throughput.toFixed(1),
  ];
}

function align(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '))
    .join('\n');
}

export function renderText(r: LoadReport): string {
  const head = STATS_COLUMNS;
  const rows = [
    head,
    ...Object.entries(r.summary.labels).map(([k, s]) => statsRow(k, s)),
    statsRow('TOTAL', r.summary.total),
  ];
  const out = [`results: ${r.jtl}${r.interrupted ? ' (interrupted)' : ''}`, align(rows), ''];
  for (const [k, s] of Object.entries(r.summary.labels))
    out.push(`${k}: codes ${top(s.codes)}; user-agents ${top(s.userAgents) || '(not recorded)'}`);
  if (r.expected !== undefined) {
    out.push(
      `expected ${r.expected} samples, received ${r.received}${r.expected === r.received ? '' : `  ** DIFFERENCE ${r.received - r.expected} **`}`,
    );
    for (const m of r.countMismatches)
      out.push(`  ${m.label}: expected ${m.expected}, received ${m.received}`);
  } else
    out.push(`received ${r.received} samples (the plan runs until its duration ends: no expected count)`);
  for (const c of r.criteria) out.push(`${c.tripped ? 'FAIL' : 'pass'}  ${c.criterion}: ${c.reason}`);
  out.push(
    r.criteria.length
      ? r.passed
        ? 'criteria: all passed'
        : 'criteria: FAILED'
      : 'criteria: none in the plan',
  );
  return out.join('\n');
}

const xml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** JUnit XML for Jenkins' junit step: one test case per criterion and one per expected label count. */
export function renderJunit(r: LoadReport): string {
  const cases: string[] = [];
  for (const c of r.criteria) {
    cases.push(
      `    <testcase classname="load.criteria" name="${xml(c.criterion)}">${c.tripped ? `<failure message="${xml(`observed ${c.observed}, threshold ${c.threshold}`)}">${xml(c.reason)}</failure>` : ''}</testcase>`,
    );
  }
  for (const [label, s] of Object.entries(r.summary.labels)) {
    const m = r.countMismatches.find((x) => x.label === label);
    cases.push(
      `    <testcase classname="load.samples" name="${xml(label)}" time="${(s.mean / 1000).toFixed(3)}">${m ? `<failure message="${xml(`expected ${m.expected} samples, received ${m.received}`)}"/>` : ''}<system-out>${xml(`${s.count} samples, ${s.errors} errors, p95 ${Math.round(s.p95)} ms`)}</system-out></testcase>`,
    );
  }
  const failures = r.criteria.filter((c) => c.tripped).length + r.countMismatches.length;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n  <testsuite name="clover-cd load" tests="${cases.length}" failures="${failures}" errors="0">\n${cases.join('\n')}\n  </testsuite>\n</testsuites>\n`;
}

const HTML_TEMPLATE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clover-cd load report</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child,th:first-child{text-align:left}.fail{color:#b00020;font-weight:bold}.pass{color:#1b5e20}</style>
</head><body>
<h1>Load report</h1>
<p>Results: <code>{{jtl}}</code>{{#if interrupted}} (interrupted){{/if}}. {{countLine}}</p>
<table><thead><tr>{{#each head}}<th>{{this}}</th>{{/each}}</tr></thead>
<tbody>{{#each rows}}<tr>{{#each this}}<td>{{this}}</td>{{/each}}</tr>{{/each}}</tbody></table>
<h2>Criteria</h2>
{{#if criteria.length}}<ul>{{#each criteria}}<li class="{{#if tripped}}fail{{else}}pass{{/if}}">{{#if tripped}}FAIL{{else}}pass{{/if}} {{criterion}}: {{reason}}</li>{{/each}}</ul>{{else}}<p>None in the plan.</p>{{/if}}
</body></html>
`;
let html: HandlebarsTemplateDelegate | undefined;

export function renderHtml(r: LoadReport): string {
  const head = STATS_COLUMNS;
  const rows = [
    ...Object.entries(r.summary.labels).map(([k, s]) => statsRow(k, s)),
    statsRow('TOTAL', r.summary.total),
  ];
  const countLine =
    r.expected !== undefined
      ? `Expected ${r.expected} samples, received ${r.received}.`
      : `Received ${r.received} samples.`;
  html ??= handlebars().compile(HTML_TEMPLATE);
  return html({ ...r, head, rows, countLine });
}
