/**
 * The gate report: one self-contained HTML page per verdict. Each picture sits beside the rules it explains
 * (latency distributions ↔ latency / compareLatency / tail; error rates ↔ errorRate / compareErrors; the
 * split ↔ split; the flow ↔ conservation; L4 ↔ l4); a panel whose rule failed is outlined in red.
 */
import { formatDuration, parseDurationMs, parsePercent } from '../util/units.js';
import { explainLines, type EvidenceBundle, type RuleResult, type Verdict } from '../validators/index.js';
import {
  alignEcdfs,
  ecdfQuantile,
  interval,
  latencyEcdfs,
  routeCounts,
  rulePairs,
  versionCounts,
  type RulePair,
} from './gate-data.js';
import { esc, page } from './page.js';
import { sequencePicture } from './gate-sequence.js';
import {
  barRows,
  COLORS,
  flowDiagram,
  intervalPlot,
  pctText,
  splitBar,
  type FlowHop,
  type IntervalRow,
} from './svg.js';

const PANELS: Array<{ id: string; title: string; kinds: string[] }> = [
  { id: 'latency', title: 'Latency: stable vs candidate', kinds: ['latency', 'compareLatency', 'tail'] },
  { id: 'errors', title: 'Error rate per version (95% intervals)', kinds: ['errorRate', 'compareErrors'] },
  { id: 'split', title: 'Configured vs observed split', kinds: ['split'] },
  { id: 'conservation', title: 'Conservation: requests at each hop', kinds: ['conservation'] },
  { id: 'l4', title: 'L3/L4 evidence per version (clovisor)', kinds: ['l4'] },
  { id: 'requests', title: 'Requests by route, status and user agent', kinds: ['count', 'share'] },
];

const ms = (v: number) => (Number.isFinite(v) ? `${v < 10 ? +v.toFixed(2) : Math.round(v)} ms` : 'n/a');
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function ruleCard(p: RulePair): string {
  const r = p.result;
  return `<div class="rule ${esc(r.outcome)}" data-rule="${esc(p.kind)}" data-outcome="${esc(r.outcome)}" id="rule-${p.index}">
<div><span class="badge ${esc(r.outcome)}">${esc(r.outcome)}</span> <span class="name">${esc(r.rule)}</span></div>
<dl><dt>observed</dt><dd>${esc(r.observed)}</dd><dt>expected</dt><dd>${esc(r.expected)}</dd><dt>source</dt><dd>${esc(r.source)}</dd><dt>reason</dt><dd>${esc(r.reason)}</dd></dl></div>`;
}

interface Ctx {
  b: EvidenceBundle;
  stable: string;
  candidate: string;
  versions: string[];
  colorOf: (v: string) => string;
  charts: Record<string, unknown>;
}

function latencyPicture(c: Ctx, rules: RulePair[]): string {
  const lat = latencyEcdfs(c.b, c.versions);
  if (!lat)
    return '<p class="note">No latency evidence in the bundle (no duration histogram and no trace durations).</p>';
  const { x, y } = alignEcdfs(lat.ecdfs);
  const marks: Array<Record<string, unknown>> = [];
  const levels = new Set<number>();
  for (const p of rules) {
    if (p.kind === 'latency') {
      const q = Number(p.body.percentile) / 100;
      const max =
        typeof p.body.max === 'string' || typeof p.body.max === 'number'
          ? parseDurationMs(String(p.body.max))
          : NaN;
      marks.push({
        kind: 'vline',
        x: max,
        label: `p${p.body.percentile} limit ${ms(max)}`,
        color: p.result.outcome === 'fail' ? COLORS.fail : '#555',
        dash: true,
      });
      levels.add(q);
    } else if (p.kind === 'tail') {
      for (const pc of (p.body.percentiles as number[] | undefined) ?? [95, 99]) levels.add(pc / 100);
    } else if (p.kind === 'compareLatency') levels.add(Number(p.body.percentile ?? 50) / 100);
  }
  if (!levels.size) [0.5, 0.95, 0.99].forEach((q) => levels.add(q));
  const rows: string[] = [];
  for (const q of [...levels].sort()) {
    marks.push({ kind: 'hline', y: q, label: `p${+(q * 100).toFixed(2)}`, color: '#999', dash: true });
    const vals = c.versions.map((v) => (lat.ecdfs[v] ? ecdfQuantile(lat.ecdfs[v], q) : NaN));
    c.versions.forEach(
      (v, i) =>
        Number.isFinite(vals[i]) &&
        marks.push({
          kind: 'point',
          x: vals[i],
          y: q,
          color: c.colorOf(v),
          label: `${v} ${ms(vals[i])}`,
          below: v === c.stable,
        }),
    );
    const [s, k] = [vals[c.versions.indexOf(c.stable)], vals[c.versions.indexOf(c.candidate)]];
    rows.push(
      `<tr><td>p${+(q * 100).toFixed(2)}</td>${vals.map((v) => `<td class="num">${ms(v)}</td>`).join('')}<td class="num">${Number.isFinite(s) && Number.isFinite(k) && s > 0 ? `${(k / s).toFixed(2)}×` : 'n/a'}</td></tr>`,
    );
  }
  // The axis reaches the limits, so a limit far above every request is still drawn.
  const limits = marks
    .filter((m) => m.kind === 'vline' && Number.isFinite(m.x as number))
    .map((m) => m.x as number);
  const lo = Math.min(...x),
    hi = Math.max(...x, ...limits);
  c.charts.latency = {
    x,
    xLog: true,
    xRange: x.length ? [lo / 1.5, hi * 1.5] : undefined,
    xTitle: 'latency (ms, log scale)',
    yTitle: 'share of requests ≤ x',
    xLabel: 'ms',
    yRange: [0, 1],
    series: c.versions
      .filter((v) => y[v])
      .map((v) => ({ label: `${v} (${lat.ecdfs[v].n})`, color: c.colorOf(v), y: y[v], step: true })),
    marks,
  };
  const head = `<tr><th>percentile</th>${c.versions.map((v) => `<th>${esc(v)}</th>`).join('')}<th>${esc(c.candidate)} / ${esc(c.stable)}</th></tr>`;
  const tail = rules.find((p) => p.kind === 'tail');
  const tailRows = (
    (tail?.result.details?.percentiles as Array<Record<string, unknown>> | undefined) ?? []
  ).map((t) => {
    const ratio = num(t.ratio),
      lower = num(t.lower);
    return `<li>p${+((num(t.q) ?? 0) * 100).toFixed(2)}: ratio ${ratio !== undefined ? ratio.toFixed(2) : 'n/a'}× (lower bound ${lower !== undefined ? lower.toFixed(2) : 'n/a'}×)${t.problem ? ` — ${esc(t.problem)}` : ''}</li>`;
  });
  return `<div class="chart" data-chart="latency"></div>
<p class="note">Empirical CDFs from ${esc(lat.source === 'jaeger' ? 'trace durations' : `${lat.source} duration histograms (steps at bucket bounds)`)}; dashed lines: percentile levels and limits; dots: each version's value at the percentile.</p>
<table class="percentiles">${head}${rows.join('')}</table>${tailRows.length ? `<h3>Tail comparison</h3><ul>${tailRows.join('')}</ul>` : ''}`;
}

function errorsPicture(c: Ctx, rules: RulePair[]): string {
  const vc = versionCounts(c.b);
  if (!vc) return '<p class="note">No request counts per version in the bundle.</p>';
  const failedVersions = new Set<string>();
  const limits: Array<{ value: number; label: string }> = [];
  let failedRoute: string | undefined;
  for (const p of rules) {
    const version = p.body.version === 'stable' ? c.stable : c.candidate;
    if (p.kind === 'errorRate' && typeof p.body.max === 'string')
      limits.push({ value: parsePercent(p.body.max), label: `limit ${p.body.max}` });
    if (p.result.outcome === 'fail') {
      const m = /^(\/\S*): /.exec(p.result.observed);
      if (m) failedRoute = m[1];
      else failedVersions.add(version);
    }
  }
  const row = (
    label: string,
    v: string,
    counts: { requests: number; errors: number } | undefined,
    flagged: boolean,
  ): IntervalRow => {
    const n = counts?.requests ?? 0,
      k = counts?.errors ?? 0;
    const i = interval(k, n);
    return {
      label,
      value: n ? k / n : NaN,
      low: i.low,
      high: i.high,
      color: c.colorOf(v),
      flagged,
      note: `(${k} of ${n})`,
    };
  };
  const rows = c.versions.map((v) => row(v, v, vc.byVersion[v], failedVersions.has(v)));
  let out = intervalPlot(rows, { title: `all routes (${vc.source})`, limits });
  const rc = routeCounts(c.b);
  if (rc) {
    const routeRows = Object.keys(rc.routes)
      .sort()
      .slice(0, 20)
      .flatMap((route) =>
        c.versions.map((v) =>
          row(`${route} ${v}`, v, rc.routes[route][v], route === failedRoute && v === c.candidate),
        ),
      );
    out += intervalPlot(routeRows, { title: `per route (${rc.source})`, limits });
  }
  return out;
}

function splitPicture(c: Ctx, rules: RulePair[]): string {
  const vc = versionCounts(c.b);
  if (!vc) return '<p class="note">No request counts per version in the bundle.</p>';
  const conf = num(rules[0]?.body.confidence) ?? 0.999;
  const s = vc.byVersion[c.stable]?.requests ?? 0,
    k = vc.byVersion[c.candidate]?.requests ?? 0;
  const i = interval(k, s + k, conf);
  return splitBar({
    configured: c.b.candidateWeight,
    share: s + k ? k / (s + k) : NaN,
    low: i.low,
    high: i.high,
    confidence: conf,
    failed: rules.some((p) => p.result.outcome === 'fail'),
    candidate: c.candidate,
    stable: c.stable,
    n: s + k,
  });
}

function conservationPicture(c: Ctx, rules: RulePair[]): string {
  const m = c.b.evidence.metrics;
  const load = c.b.evidence.load;
  const p = rules[0];
  const counts =
    (p?.result.details?.counts as
      | Array<{
          name: string;
          value: number;
          reference: number;
          referenceName: string;
          tolerance: number;
          estimate?: boolean;
        }>
      | undefined) ?? [];
  const byName = new Map(counts.map((x) => [x.name, x]));
  const hops = (p?.body.hops as string[] | undefined) ?? [c.b.service.name];
  const fan = (p?.body.fanOut as Record<string, number> | undefined) ?? {};
  const scaled = (o: Record<string, { requests: number }>, f: number) =>
    Object.fromEntries(Object.entries(o).map(([v, x]) => [v, x.requests / f]));
  const rows: FlowHop[] = [];
  if (load) rows.push({ name: 'load sent', byVersion: { load: load.sent } });
  for (const hop of hops) {
    const ref = byName.get(hop);
    if (m?.hops[hop])
      rows.push({
        name: `${hop}${fan[hop] && fan[hop] !== 1 ? ` ÷${fan[hop]}` : ''}`,
        byVersion: scaled(m.hops[hop], fan[hop] ?? 1),
        reference: ref && { name: ref.referenceName, value: ref.reference, tolerance: ref.tolerance },
      });
    const tag = byName.get(`${hop} tagged`);
    if (m?.tagged && tag)
      rows.push({
        name: `${hop} (load's own)`,
        byVersion: scaled(m.tagged[hop] ?? {}, fan[hop] ?? 1),
        reference: { name: tag.referenceName, value: tag.reference, tolerance: tag.tolerance },
      });
  }
  for (const x of counts.filter((x) => x.name.startsWith('root spans')))
    rows.push({
      name: x.name.length > 28 ? 'root spans (tagged)' : x.name,
      byVersion: { spans: x.value },
      estimate: x.estimate,
      reference: { name: x.referenceName, value: x.reference, tolerance: x.tolerance },
    });
  if (!rows.length) return '<p class="note">No hop counts in the bundle.</p>';
  const table = counts.length
    ? `<table><tr><th>count</th><th>value</th><th>vs</th><th>difference</th><th>allowance</th></tr>${counts
        .map((x) => {
          const d = x.value - x.reference;
          const off = Math.abs(d) > x.tolerance + 1e-9;
          return `<tr class="${off ? 'fail' : ''}"><td>${esc(x.name)}</td><td class="num">${+x.value.toFixed(1)}</td><td>${esc(x.referenceName)} ${x.reference}</td><td class="num">${off ? (d < 0 ? `${+(-d).toFixed(1)} lost` : `${+d.toFixed(1)} duplicated`) : +d.toFixed(1)}</td><td class="num">±${+x.tolerance.toFixed(1)}</td></tr>`;
        })
        .join('')}</table>`
    : '';
  return `${flowDiagram(rows, c.colorOf)}<p class="note">Bars: requests at each hop by version (scaled by fan-out); a red dashed box marks what was lost or duplicated against the count it is compared with.</p>${table}`;
}

function l4Picture(c: Ctx): string {
  const l4 = c.b.evidence.l4;
  if (!l4) return '<p class="note">clovisor did not run for this window (no L4 evidence).</p>';
  const vs = Object.keys(l4.versions);
  const rate = (f: 'resetRate' | 'retransmitRate', title: string) =>
    barRows(
      vs.map((v) => ({
        label: v,
        value: l4.versions[v][f] ?? 0,
        color: c.colorOf(v),
        text: pctText(l4.versions[v][f] ?? NaN, 3),
      })),
      title,
    );
  const table = `<table><tr><th>version</th><th>connections</th><th>resets</th><th>retransmits / segments</th><th>connect failures</th><th>handshake p50 / p99</th></tr>${vs
    .map((v) => {
      const x = l4.versions[v];
      return `<tr><td>${esc(v)}</td><td class="num">${x.connections}</td><td class="num">${x.resetConnections}</td><td class="num">${x.retransmits} / ${x.segmentsOut}</td><td class="num">${x.connectFailures}</td><td class="num">${ms(x.handshakeP50Ms ?? NaN)} / ${ms(x.handshakeP99Ms ?? NaN)}</td></tr>`;
    })
    .join('')}</table>`;
  return `${rate('resetRate', 'connections reset')}${rate('retransmitRate', 'segments retransmitted')}${barRows(
    vs.map((v) => ({
      label: v,
      value: l4.versions[v].connectFailures,
      color: c.colorOf(v),
      text: String(l4.versions[v].connectFailures),
    })),
    'failed connects',
  )}${table}${l4.complete ? '' : '<p class="note">Events were lost: the counts are lower bounds.</p>'}`;
}

function requestsPicture(c: Ctx): string {
  const groups = c.b.evidence.traces?.requests ?? [];
  if (!groups.length) return '<p class="note">No request groups from traces.</p>';
  const top = [...groups].sort((a, b) => b.count - a.count).slice(0, 30);
  return `<table><tr><th>url</th><th>status</th><th>user agent</th><th>requests</th></tr>${top.map((g) => `<tr><td>${esc(g.url)}</td><td>${esc(g.status)}</td><td>${esc(g.userAgent)}</td><td class="num">${g.count}</td></tr>`).join('')}</table>`;
}

/** The gate report of a verdict on a bundle, as one self-contained HTML page. */
export function renderGateHtml(
  verdict: Verdict,
  b: EvidenceBundle,
  opts: { bundleName?: string; nonce?: string } = {},
): string {
  const { stable, candidate } = b.service;
  const vc = versionCounts(b);
  const versions = [
    stable,
    candidate,
    ...Object.keys(vc?.byVersion ?? {})
      .filter((v) => v !== stable && v !== candidate)
      .sort(),
  ];
  const colorOf = (v: string) =>
    v === stable ? COLORS.stable : v === candidate ? COLORS.candidate : COLORS.other;
  const c: Ctx = { b, stable, candidate, versions, colorOf, charts: {} };
  const pairs = rulePairs(b, verdict.results);
  const used = new Set<number>();
  const sections: string[] = [];
  for (const panel of PANELS) {
    const rules = pairs.filter((p) => panel.kinds.includes(p.kind));
    rules.forEach((p) => used.add(p.index));
    const hasData =
      panel.id === 'l4'
        ? !!b.evidence.l4
        : panel.id === 'requests'
          ? !!b.evidence.traces?.requests.length
          : panel.id === 'split'
            ? rules.length > 0
            : true;
    if (!rules.length && !hasData) continue;
    const pic =
      panel.id === 'latency'
        ? latencyPicture(c, rules)
        : panel.id === 'errors'
          ? errorsPicture(c, rules)
          : panel.id === 'split'
            ? splitPicture(c, rules)
            : panel.id === 'conservation'
              ? conservationPicture(c, rules)
              : panel.id === 'l4'
                ? l4Picture(c)
                : requestsPicture(c);
    const failed = rules.some((p) => p.result.outcome === 'fail');
    sections.push(
      `<section class="panel${failed ? ' failed' : ''}" id="panel-${panel.id}" data-panel="${panel.id}"><div class="pic"><h2>${esc(panel.title)}</h2>${pic}</div><div class="rules">${rules.length ? rules.map(ruleCard).join('') : '<p class="note">No rule judges this picture.</p>'}</div></section>`,
    );
  }
  const rest = pairs.filter((p) => !used.has(p.index));
  if (rest.length)
    sections.push(
      `<section class="panel${rest.some((p) => p.result.outcome === 'fail') ? ' failed' : ''}" id="panel-other" data-panel="other"><div class="pic"><h2>Other rules</h2></div><div class="rules">${rest.map(ruleCard).join('')}</div></section>`,
    );
  const panelOf = (p: RulePair) => PANELS.find((x) => x.kinds.includes(p.kind))?.id ?? 'other';
  const summary = `<section class="panel" style="display:block"><h2>Rules</h2><table class="rules-table"><tr><th>rule</th><th>outcome</th><th>observed</th><th>expected</th></tr>${pairs
    .map(
      (p) =>
        `<tr class="${p.result.outcome === 'fail' ? 'fail' : ''}"><td><a href="#panel-${panelOf(p)}">${esc(p.result.rule)}</a></td><td><span class="badge ${esc(p.result.outcome)}">${esc(p.result.outcome)}</span></td><td>${esc(p.result.observed)}</td><td>${esc(p.result.expected)}</td></tr>`,
    )
    .join('')}</table></section>`;
  const explained = explainLines(verdict, b);
  const budget = explained.length
    ? `<section class="panel" style="display:block" id="panel-budget" data-panel="budget"><h2>False-alarm budget</h2><pre>${esc(explained.join('\n'))}</pre></section>`
    : '';
  const down = b.sources.filter((s) => s.status === 'down');
  const head = `<header><h1>Gate <span class="badge ${esc(verdict.outcome)}" id="verdict">${esc(verdict.outcome)}</span> ${esc(b.release)}</h1>
<div>${esc(b.service.name)}: <span style="color:${COLORS.stable}">${esc(stable)}</span> → <span style="color:${COLORS.candidate}">${esc(candidate)}</span>${b.candidateWeight !== undefined ? ` at ${b.candidateWeight}%` : ''}; window ${esc(new Date(b.window.start).toISOString())} .. ${esc(new Date(b.window.end).toISOString())} (${esc(formatDuration(b.window.end - b.window.start))})${b.plannedSamples ? `; planned ${b.plannedSamples} candidate requests` : ''}</div>
<div class="muted">sources: ${b.sources.map((s) => `${esc(s.name)} ${esc(s.status)}`).join(', ') || 'none'}${opts.bundleName ? ` · evidence <code>${esc(opts.bundleName)}</code>` : ''}</div>
<p><strong>${esc(verdict.summary)}</strong></p>${down.map((s) => `<p class="rule error">${esc(s.name)} is down: ${esc(s.error ?? '')}</p>`).join('')}</header>`;
  const sequence = sequencePicture(verdict, b, c.charts);
  return page(
    `gate ${verdict.outcome} — ${b.release}`,
    head,
    summary + sequence + budget + sections.join('\n'),
    { charts: c.charts },
    { nonce: opts.nonce },
  );
}

export type { RuleResult };
