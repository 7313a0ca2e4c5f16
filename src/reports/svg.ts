/**
 * The small pictures of the gate report, drawn as inline SVG (a handful of marks each, no library):
 * interval dot plots (error rates), the configured-vs-observed split, the conservation flow, bar rows.
 */
import { esc } from './page.js';

export const COLORS = {
  stable: '#1f6fb2',
  candidate: '#e0701b',
  other: '#888',
  fail: '#c62828',
  pass: '#1b7f3b',
  limit: '#c62828',
};

const fmt = (v: number, digits = 2) => (Number.isFinite(v) ? String(+v.toFixed(digits)) : 'n/a');
export const pctText = (v: number, digits = 2) =>
  Number.isFinite(v) ? `${+(v * 100).toFixed(digits)}%` : 'n/a';

export interface IntervalRow {
  label: string;
  value: number;
  low: number;
  high: number;
  color: string;
  /** Drawn in red with a mark: the row a failed rule points at. */
  flagged?: boolean;
  note?: string;
}

/** Rows of dots with interval whiskers on one axis from 0, with optional limit lines. */
export function intervalPlot(
  rows: IntervalRow[],
  opts: { title: string; limits?: Array<{ value: number; label: string }>; format?: (v: number) => string },
): string {
  const f = opts.format ?? ((v: number) => pctText(v));
  const W = 720,
    left = 170,
    right = 150,
    rowH = 26,
    top = 26;
  const H = top + rows.length * rowH + 26;
  const hi = Math.max(1e-9, ...rows.map((r) => r.high), ...(opts.limits ?? []).map((l) => l.value)) * 1.1;
  const x = (v: number) => left + (Math.max(0, Math.min(v, hi)) / hi) * (W - left - right);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((t) => t * hi);
  const parts = [
    `<svg class="interval-plot" role="img" aria-label="${esc(opts.title)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">`,
    `<text x="${left}" y="14" font-weight="600">${esc(opts.title)}</text>`,
  ];
  for (const t of ticks)
    parts.push(
      `<line x1="${x(t)}" x2="${x(t)}" y1="${top - 6}" y2="${H - 22}" stroke="#eee"/><text x="${x(t)}" y="${H - 8}" text-anchor="middle" fill="#666">${esc(f(t))}</text>`,
    );
  rows.forEach((r, i) => {
    const y = top + i * rowH + rowH / 2;
    const color = r.flagged ? COLORS.fail : r.color;
    parts.push(
      `<text x="${left - 8}" y="${y + 4}" text-anchor="end"${r.flagged ? ' fill="#c62828" font-weight="600"' : ''}>${esc(r.label)}</text>`,
    );
    if (Number.isFinite(r.low) && Number.isFinite(r.high)) {
      parts.push(
        `<line x1="${x(r.low)}" x2="${x(r.high)}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2"/>`,
      );
      parts.push(
        `<line x1="${x(r.low)}" x2="${x(r.low)}" y1="${y - 5}" y2="${y + 5}" stroke="${color}" stroke-width="2"/><line x1="${x(r.high)}" x2="${x(r.high)}" y1="${y - 5}" y2="${y + 5}" stroke="${color}" stroke-width="2"/>`,
      );
    }
    if (Number.isFinite(r.value))
      parts.push(
        `<circle cx="${x(r.value)}" cy="${y}" r="5" fill="${color}"><title>${esc(`${r.label}: ${f(r.value)} (${f(r.low)}..${f(r.high)})${r.note ? ` ${r.note}` : ''}`)}</title></circle>`,
      );
    parts.push(
      `<text x="${x(r.high) + 8}" y="${y + 4}" fill="#444">${esc(Number.isFinite(r.value) ? f(r.value) : 'no data')}${r.note ? ` ${esc(r.note)}` : ''}</text>`,
    );
  });
  for (const l of opts.limits ?? []) {
    parts.push(
      `<line x1="${x(l.value)}" x2="${x(l.value)}" y1="${top - 8}" y2="${H - 22}" stroke="${COLORS.limit}" stroke-dasharray="5 3" stroke-width="1.5"/><text x="${x(l.value) + 4}" y="${top - 10 + 8}" fill="${COLORS.limit}">${esc(l.label)}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('');
}

/** The candidate's share on a 0–100% bar: the configured weight, the observed share and its interval. */
export function splitBar(s: {
  configured?: number;
  share: number;
  low: number;
  high: number;
  confidence: number;
  failed: boolean;
  candidate: string;
  stable: string;
  n: number;
}): string {
  const W = 640,
    left = 20,
    right = 20,
    y = 46;
  const x = (v: number) => left + Math.max(0, Math.min(1, v)) * (W - left - right);
  const col = s.failed ? COLORS.fail : COLORS.candidate;
  const parts = [
    `<svg class="split-bar" role="img" aria-label="configured vs observed split" viewBox="0 0 ${W} 110" width="${W}" height="110">`,
  ];
  parts.push(
    `<rect x="${left}" y="${y - 10}" width="${W - left - right}" height="20" fill="${COLORS.stable}" opacity="0.25"/>`,
  );
  if (Number.isFinite(s.share))
    parts.push(
      `<rect x="${left}" y="${y - 10}" width="${x(s.share) - left}" height="20" fill="${COLORS.candidate}" opacity="0.35"/>`,
    );
  parts.push(
    `<rect x="${x(s.low)}" y="${y - 16}" width="${Math.max(2, x(s.high) - x(s.low))}" height="32" fill="none" stroke="${col}" stroke-width="2"/>`,
  );
  if (Number.isFinite(s.share)) parts.push(`<circle cx="${x(s.share)}" cy="${y}" r="5" fill="${col}"/>`);
  if (s.configured !== undefined) {
    const c = x(s.configured / 100);
    parts.push(
      `<line x1="${c}" x2="${c}" y1="${y - 26}" y2="${y + 26}" stroke="#222" stroke-width="2" stroke-dasharray="4 2"/><text x="${c}" y="${y - 30}" text-anchor="middle">configured ${fmt(s.configured)}%</text>`,
    );
  }
  for (const t of [0, 0.25, 0.5, 0.75, 1])
    parts.push(`<text x="${x(t)}" y="${y + 34}" text-anchor="middle" fill="#666">${t * 100}%</text>`);
  parts.push(
    `<text x="${left}" y="${y + 56}" fill="${col}">observed ${esc(s.candidate)} ${pctText(s.share)} of ${s.n} (interval ${pctText(s.low)}..${pctText(s.high)} at ${fmt(s.confidence * 100, 3)}%)</text>`,
  );
  parts.push('</svg>');
  return parts.join('');
}

export interface FlowHop {
  name: string;
  /** Requests per version (one segment each); a single total when the count has no versions. */
  byVersion: Record<string, number>;
  /** Compared with: name and value, and what the difference is allowed to be. */
  reference?: { name: string; value: number; tolerance: number };
  estimate?: boolean;
}

/** Requests at each hop, left to right, stacked by version, with what was lost or duplicated against its reference. */
export function flowDiagram(hops: FlowHop[], colorOf: (version: string) => string): string {
  const W = 760,
    left = 230,
    right = 230,
    rowH = 34,
    top = 10;
  const H = top + hops.length * rowH + 10;
  const max = Math.max(
    1,
    ...hops.map((h) => Object.values(h.byVersion).reduce((a, b) => a + b, 0)),
    ...hops.map((h) => h.reference?.value ?? 0),
  );
  const sx = (v: number) => (v / max) * (W - left - right);
  const parts = [
    `<svg class="flow" role="img" aria-label="requests at each hop" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">`,
  ];
  hops.forEach((h, i) => {
    const y = top + i * rowH;
    const total = Object.values(h.byVersion).reduce((a, b) => a + b, 0);
    const diff = h.reference ? total - h.reference.value : 0;
    const off = h.reference !== undefined && Math.abs(diff) > h.reference.tolerance + 1e-9;
    parts.push(
      `<text x="${left - 8}" y="${y + 17}" text-anchor="end"${off ? ' fill="#c62828" font-weight="600"' : ''}>${esc(h.name)}</text>`,
    );
    let cx = left;
    for (const [v, n] of Object.entries(h.byVersion)) {
      const w = sx(n);
      parts.push(
        `<rect x="${cx}" y="${y + 4}" width="${Math.max(0, w)}" height="18" fill="${colorOf(v)}" opacity="0.8"><title>${esc(`${h.name} ${v}: ${n}`)}</title></rect>`,
      );
      if (w > 40)
        parts.push(`<text x="${cx + 4}" y="${y + 17}" fill="#fff">${esc(v)} ${Math.round(n)}</text>`);
      cx += w;
    }
    if (h.reference && off) {
      // The missing (or extra) requests against the reference, hatched in red.
      const a = left + sx(Math.min(total, h.reference.value));
      const b = left + sx(Math.max(total, h.reference.value));
      parts.push(
        `<rect class="flow-off" x="${a}" y="${y + 2}" width="${Math.max(2, b - a)}" height="22" fill="none" stroke="${COLORS.fail}" stroke-width="2" stroke-dasharray="3 2"/>`,
      );
    }
    const label = h.reference
      ? off
        ? `${diff < 0 ? `${fmt(-diff, 1)} lost` : `${fmt(diff, 1)} extra`} vs ${h.reference.name}`
        : `= ${h.reference.name} ±${fmt(h.reference.tolerance, 1)}`
      : '';
    parts.push(
      `<text x="${left + sx(Math.max(total, h.reference?.value ?? 0)) + 6}" y="${y + 17}"${off ? ' fill="#c62828" font-weight="600"' : ' fill="#444"'}>${esc(`${Math.round(total)}${h.estimate ? ' (est.)' : ''} ${label}`)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

/** Horizontal bars, one per row, for small per-version counts (L4). */
export function barRows(
  rows: Array<{ label: string; value: number; color: string; text?: string; flagged?: boolean }>,
  title: string,
): string {
  const W = 640,
    left = 170,
    right = 120,
    rowH = 22;
  const H = 22 + rows.length * rowH + 6;
  const max = Math.max(1e-12, ...rows.map((r) => r.value));
  const parts = [
    `<svg class="bars" role="img" aria-label="${esc(title)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}"><text x="${left}" y="14" font-weight="600">${esc(title)}</text>`,
  ];
  rows.forEach((r, i) => {
    const y = 22 + i * rowH;
    const w = (r.value / max) * (W - left - right);
    parts.push(
      `<text x="${left - 8}" y="${y + 13}" text-anchor="end"${r.flagged ? ' fill="#c62828" font-weight="600"' : ''}>${esc(r.label)}</text>`,
    );
    parts.push(
      `<rect x="${left}" y="${y + 2}" width="${Math.max(1, w)}" height="14" fill="${r.flagged ? COLORS.fail : r.color}"/>`,
    );
    parts.push(`<text x="${left + w + 6}" y="${y + 13}" fill="#444">${esc(r.text ?? fmt(r.value))}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
