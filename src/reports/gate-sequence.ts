/**
 * The pictures of a sequential decision: each statistical rule's tests over the window, their evidence
 * against the threshold that decides them (fail: ln(1/α), pass: ln(1/β); a pass side decided by a difference of
 * confidence sequences shows that bound against the rule's detect size), and the moment the gate decided.
 */
import type { EvidenceBundle, Verdict } from '../validators/index.js';
import { esc } from './page.js';
import { COLORS } from './svg.js';

interface Point {
  t: number;
  fail: number | null;
  pass?: number | null;
  bound?: number;
}
interface TestDetails {
  id: string;
  label: string;
  failThreshold: number;
  passThreshold: number;
  alpha: number;
  failedAt?: number;
  passedAt?: number;
  required: boolean;
  trace: Point[];
}

/** Tests drawn per rule: the overall one, every failed or undecided route, then the rest up to this many. */
const MAX_TESTS = 5;
const PALETTE = ['#1f6fb2', '#e0701b', '#6a1b9a', '#2e7d32', '#00838f', '#8d6e63'];

const finite = (v: number | null | undefined): number | null =>
  typeof v === 'number' && Number.isFinite(v) ? v : null;

/** The section, and the charts it adds to `charts`; empty when the verdict was not reached sequentially. */
export function sequencePicture(v: Verdict, b: EvidenceBundle, charts: Record<string, unknown>): string {
  const rules = v.results
    .map((r, index) => ({
      r,
      index,
      d: r.details as { sequential?: boolean; tests?: TestDetails[] } | undefined,
    }))
    .filter((x) => x.d?.sequential && x.d.tests?.length);
  if (!rules.length) return '';
  const decision = v.decision;
  const decidedS = decision ? decision.afterMs / 1000 : undefined;
  const blocks = rules.map(({ r, index, d }) => {
    const tests = [...d!.tests!].sort((x, y) => rank(x) - rank(y)).slice(0, MAX_TESTS);
    const xs = [...new Set(tests.flatMap((t) => t.trace.map((p) => p.t)))].sort((a, c) => a - c);
    const at = (t: TestDetails, key: 'fail' | 'pass' | 'bound') => {
      const byT = new Map(t.trace.map((p) => [p.t, p]));
      return xs.map((x) => finite(byT.get(x)?.[key] as number | undefined));
    };
    const series: Array<Record<string, unknown>> = [];
    const marks: Array<Record<string, unknown>> = [];
    tests.forEach((t, i) => {
      const color = PALETTE[i % PALETTE.length];
      series.push({ label: `${t.label}: fail evidence`, color, y: at(t, 'fail') });
      const pass = at(t, 'pass');
      if (pass.some((p) => p !== null))
        series.push({ label: `${t.label}: pass evidence`, color, y: pass, dash: true });
      const bound = at(t, 'bound');
      if (bound.some((p) => p !== null))
        series.push({
          label: `${t.label}: increase ruled out beyond (points)`,
          color,
          y: bound.map((x) => (x === null ? null : x * 100)),
          dash: true,
          scale: 'y2',
        });
      if (t.failedAt !== undefined)
        marks.push({
          kind: 'point',
          x: t.failedAt / 1000,
          y: finite(t.trace.find((p) => p.t === t.failedAt)?.fail) ?? t.failThreshold,
          color: COLORS.fail,
          label: `${t.label} fails`,
        });
      if (t.passedAt !== undefined)
        marks.push({
          kind: 'point',
          x: t.passedAt / 1000,
          y: t.passThreshold,
          color: COLORS.pass,
          label: `${t.label} passes`,
          below: true,
        });
    });
    const main = tests[0];
    marks.push({
      kind: 'hline',
      y: main.failThreshold,
      color: COLORS.fail,
      dash: true,
      label: `fail at ln(1/α) = ${main.failThreshold.toFixed(1)}${tests.some((t) => t.failThreshold !== main.failThreshold) ? ' (overall)' : ''}`,
    });
    marks.push({
      kind: 'hline',
      y: main.passThreshold,
      color: COLORS.pass,
      dash: true,
      label: `pass at ln(1/β) = ${main.passThreshold.toFixed(1)}`,
    });
    if (decidedS !== undefined)
      marks.push({
        kind: 'vline',
        x: decidedS,
        color:
          decision!.outcome === 'fail' ? COLORS.fail : decision!.outcome === 'pass' ? COLORS.pass : '#b26a00',
        label: `decided ${decision!.outcome} at ${decidedS}s`,
      });
    const id = `seq-${index}`;
    charts[id] = {
      x: xs.map((x) => x / 1000),
      xTitle: 'seconds since the window opened',
      yTitle: 'evidence (ln of the test martingale)',
      y2Title: series.some((s) => s.scale === 'y2') ? 'bound of the increase (points)' : undefined,
      xLabel: 's',
      series,
      marks,
    };
    const hidden = d!.tests!.length - tests.length;
    return `<div class="seq" data-rule-index="${index}"><h3><span class="badge ${esc(r.outcome)}">${esc(r.outcome)}</span> ${esc(r.rule)}</h3><div class="chart" data-chart="${id}"></div>${hidden > 0 ? `<p class="note">${hidden} more route test(s) not drawn (all passed).</p>` : ''}</div>`;
  });
  const head = decision
    ? `Decided <strong>${esc(decision.outcome)}</strong> at look ${decision.look} of ${decision.looks}, ${decidedS}s after the window opened (${esc(new Date(decision.at).toISOString())}).`
    : 'No decision was recorded.';
  return `<section class="panel" style="display:block" id="panel-sequence" data-panel="sequence"><h2>Sequential decision</h2><p>${head}</p>
<p class="note">Each line is a test's evidence at every look (${b.sequence?.length ?? 0} kept in the bundle): a test fails when its fail evidence reaches ln(1/α) (its share of the budget) and passes when its pass evidence reaches ln(1/β); the gate passes once every rule has passed and the window is long enough, and fails at the first failure. Evidence is always valid: looking at every scrape costs nothing.</p>
${blocks.join('\n')}</section>`;
}

/** Failed first, then undecided, then the overall test, then the rest. */
function rank(t: TestDetails): number {
  if (t.failedAt !== undefined) return 0;
  if (t.id === 'overall') return 1;
  if (t.passedAt === undefined && t.required) return 2;
  return 3;
}
