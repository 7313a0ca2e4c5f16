/**
 * The shell every HTML report shares: one self-contained page (no request leaves it), the chart library
 * inlined from its package (uPlot's IIFE build, read once from node_modules, so the compiled CLI ships it
 * with its dependencies), the page data as an inert JSON block, and the client code that draws the charts.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let cached: { js: string; css: string } | undefined;

/** uPlot's minified script and stylesheet (about 53 KB together). */
export function chartLibrary(): { js: string; css: string } {
  cached ??= {
    js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
  return cached;
}

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
/** Text for HTML content and attribute values. */
export const esc = (s: unknown): string => String(s ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c]);

/** JSON that is safe inside a <script> element: no "</script", no "<!--", no U+2028/2029. */
export const scriptJson = (v: unknown): string =>
  JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

export const CSS = `
:root{--pass:#1b7f3b;--fail:#c62828;--inc:#b26a00;--err:#6a1b9a;--stable:#1f6fb2;--cand:#e0701b;--muted:#666;--line:#ddd}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:16px 24px;background:#fff;border-bottom:1px solid var(--line)}main{padding:16px 24px;max-width:1280px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:0 0 8px}h3{font-size:14px;margin:8px 0 4px}
.muted{color:var(--muted)}code{font-size:12px}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;color:#fff;font-weight:600;font-size:12px;text-transform:uppercase}
.badge.pass{background:var(--pass)}.badge.fail{background:var(--fail)}.badge.inconclusive{background:var(--inc)}.badge.error{background:var(--err)}
.panel{background:#fff;border:1px solid var(--line);border-radius:6px;margin:0 0 16px;padding:12px 16px;display:grid;grid-template-columns:minmax(0,3fr) minmax(260px,2fr);gap:16px}
.panel.failed{border:2px solid var(--fail);box-shadow:0 0 0 3px #c6282822}
.panel>.pic{min-width:0}.panel>.rules{min-width:0}
.rule{border-left:4px solid var(--line);padding:4px 8px;margin:0 0 8px;background:#fcfcfc}
.rule.pass{border-color:var(--pass)}.rule.fail{border-color:var(--fail);background:#fdecec}.rule.inconclusive{border-color:var(--inc)}.rule.error{border-color:var(--err)}
.rule .name{font-weight:600}.rule dl{display:grid;grid-template-columns:auto 1fr;gap:0 8px;margin:4px 0 0;font-size:12px}.rule dt{color:var(--muted)}.rule dd{margin:0}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid var(--line);padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
tr.fail td{background:#fdecec}.rules-table td,.rules-table th{text-align:left}.num{font-variant-numeric:tabular-nums}
.legend span{margin-right:12px}.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:middle}
.chart{min-height:220px}svg{max-width:100%;height:auto;font:11px system-ui,sans-serif}
.note{font-size:12px;color:var(--muted)}
@media (max-width:900px){.panel{grid-template-columns:1fr}}
`;

/**
 * Draws every element with a data-chart attribute from the page's JSON (id "report-data"): uPlot line /
 * step charts, with optional marks (vertical limits, horizontal percentile levels, labelled points).
 */
export const CLIENT = `
(function(){
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var charts = data.charts || {};
  function marksPlugin(marks){
    return { hooks: { draw: [function(u){
      var ctx = u.ctx, l = u.bbox.left, t = u.bbox.top, w = u.bbox.width, h = u.bbox.height, px = devicePixelRatio || 1;
      ctx.save(); ctx.font = (11*px) + 'px sans-serif'; ctx.lineWidth = 1.5*px;
      marks.forEach(function(m){
        ctx.strokeStyle = ctx.fillStyle = m.color || '#c62828';
        ctx.setLineDash(m.dash ? [6*px, 4*px] : []);
        if (m.kind === 'vline') {
          var x = u.valToPos(m.x, 'x', true); if (!isFinite(x) || x < l || x > l + w) return;
          ctx.beginPath(); ctx.moveTo(x, t); ctx.lineTo(x, t + h); ctx.stroke(); ctx.fillText(m.label || '', x + 4*px, t + 12*px);
        } else if (m.kind === 'hline') {
          var y = u.valToPos(m.y, m.scale || 'y', true); if (!isFinite(y)) return;
          ctx.beginPath(); ctx.moveTo(l, y); ctx.lineTo(l + w, y); ctx.stroke(); ctx.fillText(m.label || '', l + 4*px, y - 4*px);
        } else if (m.kind === 'point') {
          var px2 = u.valToPos(m.x, 'x', true), py = u.valToPos(m.y, m.scale || 'y', true); if (!isFinite(px2) || !isFinite(py)) return;
          ctx.setLineDash([]); ctx.beginPath(); ctx.arc(px2, py, 4*px, 0, 2*Math.PI); ctx.fill();
          if (m.label) ctx.fillText(m.label, px2 + 6*px, py + (m.below ? 14 : -6)*px);
        }
      });
      ctx.restore();
    }]}};
  }
  document.querySelectorAll('[data-chart]').forEach(function(el){
    var c = charts[el.getAttribute('data-chart')]; if (!c) return;
    var series = [{ label: c.xLabel || 'x' }].concat(c.series.map(function(s){
      var o = { label: s.label, stroke: s.color, width: 2, spanGaps: true, points: { show: false } };
      if (s.step) o.paths = uPlot.paths.stepped({ align: 1 });
      if (s.scale) o.scale = s.scale;
      if (s.dash) o.dash = [6, 4];
      return o;
    }));
    var scales = { x: { time: !!c.time } };
    if (c.xRange) scales.x.range = c.xRange;
    if (c.xLog) scales.x.distr = 3;
    scales.y = c.yLog ? { distr: 3 } : (c.yRange ? { range: c.yRange } : { auto: true });
    var axes = [{ label: c.xTitle || '' }, { label: c.yTitle || '', size: 60 }];
    if (c.y2Title) { scales.y2 = { auto: true }; axes.push({ scale: 'y2', side: 1, label: c.y2Title, grid: { show: false }, size: 60 }); }
    var opts = { width: Math.max(320, el.clientWidth || 720), height: c.height || 260, series: series, scales: scales, axes: axes,
      legend: { show: true }, cursor: { drag: { x: true, y: false } }, plugins: c.marks ? [marksPlugin(c.marks)] : [] };
    el.textContent = '';
    new uPlot(opts, [c.x].concat(c.series.map(function(s){ return s.y; })), el);
  });
})();
`;

/** One self-contained page: the chart library, the data, the client code. No request leaves it. */
export function page(
  title: string,
  head: string,
  body: string,
  data: unknown,
  opts: { nonce?: string } = {},
): string {
  const lib = chartLibrary();
  const n = opts.nonce ? ` nonce="${esc(opts.nonce)}"` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><link rel="icon" href="data:,">
<style>${lib.css}${CSS}</style></head>
<body>${head}<main>${body}</main>
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<script${n}>${lib.js}</script>
<script${n}>${CLIENT}</script>
</body></html>
`;
}
