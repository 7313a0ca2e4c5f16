/**
 * The load report: the JTL's statistics table, the plan's criteria, and per label (busiest first) two
 * charts over time — throughput with errors, and latency percentiles (p50 / p90 / p99, log scale).
 */
import type { JtlSeries, LabelStats, LoadReport } from '../jmeter/index.js';
import { esc, page } from './page.js';

const MAX_LABELS = 12;
const ms = (v: number) => String(Math.round(v));
const pct = (v: number) => `${(v * 100).toFixed(2)}%`;

function row(name: string, s: LabelStats): string {
  const cells = [
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
  return `<tr class="${s.errors ? 'fail' : ''}"><td>${esc(name)}</td>${cells.map((c) => `<td class="num">${esc(c)}</td>`).join('')}</tr>`;
}

export function renderLoadHtml(r: LoadReport, series: JtlSeries): string {
  const charts: Record<string, unknown> = {};
  const labels = [
    'TOTAL',
    ...Object.entries(r.summary.labels)
      .sort(([, a], [, b]) => b.count - a.count)
      .map(([k]) => k)
      .slice(0, MAX_LABELS),
  ];
  const blocks: string[] = [];
  labels.forEach((label, i) => {
    const pts = series.labels[label];
    if (!pts?.length) return;
    const x = pts.map((p) => p.t);
    charts[`tp${i}`] = {
      x,
      time: true,
      xLabel: 'time',
      height: 200,
      yTitle: 'requests/s',
      y2Title: 'errors/s',
      series: [
        { label: 'requests/s', color: '#1f6fb2', y: pts.map((p) => p.rps) },
        { label: 'errors/s', color: '#c62828', y: pts.map((p) => p.eps), scale: 'y2' },
      ],
    };
    charts[`lat${i}`] = {
      x,
      time: true,
      xLabel: 'time',
      height: 200,
      yLog: true,
      yTitle: 'ms (log)',
      series: [
        { label: 'p50', color: '#1b7f3b', y: pts.map((p) => p.p50) },
        { label: 'p90', color: '#e0701b', y: pts.map((p) => p.p90) },
        { label: 'p99', color: '#6a1b9a', y: pts.map((p) => p.p99) },
      ],
    };
    const s = label === 'TOTAL' ? r.summary.total : r.summary.labels[label];
    blocks.push(
      `<section class="panel${s?.errors ? ' failed' : ''}" data-label="${esc(label)}" style="grid-template-columns:1fr 1fr"><div class="pic"><h2>${esc(label === 'TOTAL' ? 'All labels' : label)} — throughput and errors</h2><div class="chart" data-chart="tp${i}"></div></div><div class="pic"><h2>latency percentiles</h2><div class="chart" data-chart="lat${i}"></div></div></section>`,
    );
  });
  const more = Object.keys(r.summary.labels).length - (labels.length - 1);
  const head = `<header><h1>Load report <span class="badge ${r.passed ? 'pass' : 'fail'}" id="verdict">${r.passed ? 'passed' : 'failed'}</span></h1>
<div>results <code>${esc(r.jtl)}</code>${r.interrupted ? ' (interrupted)' : ''}; ${r.expected !== undefined ? `expected ${r.expected} samples, received ${r.received}` : `received ${r.received} samples`}; time buckets of ${series.bucketMs / 1000}s</div></header>`;
  const table = `<section class="panel" style="display:block"><h2>Statistics</h2><table><tr>${['label', 'samples', 'errors', 'error%', 'min', 'mean', 'p50', 'p90', 'p95', 'p99', 'max', 'req/s'].map((h) => `<th>${h}</th>`).join('')}</tr>${Object.entries(
    r.summary.labels,
  )
    .map(([k, s]) => row(k, s))
    .join('')}${row('TOTAL', r.summary.total)}</table>
${r.countMismatches.length ? `<p class="rule fail">${r.countMismatches.map((m) => `${esc(m.label)}: expected ${m.expected}, received ${m.received}`).join('; ')}</p>` : ''}
<h3>Criteria</h3>${r.criteria.length ? r.criteria.map((c) => `<div class="rule ${c.tripped ? 'fail' : 'pass'}"><span class="badge ${c.tripped ? 'fail' : 'pass'}">${c.tripped ? 'fail' : 'pass'}</span> ${esc(c.criterion)}: ${esc(c.reason)}</div>`).join('') : '<p class="note">None in the plan.</p>'}</section>`;
  return page(
    'clover-cd load report',
    head,
    table +
      blocks.join('\n') +
      (more > 0 ? `<p class="note">${more} more label(s) in the table only.</p>` : ''),
    { charts },
  );
}
