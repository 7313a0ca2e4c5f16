/**
 * Verdict reports: text for a terminal, JUnit XML for Jenkins' junit step (one testcase per rule; fail →
 * <failure>, error → <error>, inconclusive → <skipped>), Markdown for a pull-request comment. Pure.
 */
import { formatDuration } from '../util/units.js';
import { describeBudget } from './budget.js';
import { describeRule } from './rules.js';
import type { EvidenceBundle, Outcome, RuleResult, Verdict } from './types.js';

const MARK: Record<Outcome, string> = {
  pass: 'PASS',
  fail: 'FAIL',
  inconclusive: 'INCONCLUSIVE',
  error: 'ERROR',
};
const ICON: Record<Outcome, string> = { pass: '✅', fail: '❌', inconclusive: '⚠️', error: '🛑' };

function windowText(b: EvidenceBundle): string {
  return `${new Date(b.window.start).toISOString()} .. ${new Date(b.window.end).toISOString()} (${formatDuration(b.window.end - b.window.start)})`;
}

/** How the false-alarm budget was spent (and when the sequence decided), one line each; empty without a budget. */
export function explainLines(v: Verdict, b: EvidenceBundle): string[] {
  if (!v.budget) return [];
  const lines = describeBudget(
    v.budget,
    (i) => (b.rules[i] ? describeRule(b.rules[i]) : `rule ${i + 1}`),
    b.alphaNote,
  );
  const d = v.decision;
  if (d)
    lines.push(
      `decided ${d.outcome} at look ${d.look} of ${d.looks}, ${formatDuration(d.afterMs)} after the window opened (${new Date(d.at).toISOString()})`,
    );
  return lines;
}

export function renderText(
  v: Verdict,
  b: EvidenceBundle,
  bundlePath?: string,
  opts: { explain?: boolean } = {},
): string {
  const lines = [
    `gate ${MARK[v.outcome]}  ${b.release}: ${b.service.name} ${b.service.stable} → ${b.service.candidate}${b.candidateWeight !== undefined ? ` at ${b.candidateWeight}%` : ''}`,
    `window  ${windowText(b)}`,
    `sources ${b.sources.map((s) => `${s.name} ${s.status}${s.url ? ` (${s.url})` : ''}`).join(', ') || 'none'}`,
    '',
  ];
  for (const r of v.results) {
    lines.push(`${MARK[r.outcome].padEnd(12)} ${r.rule}`);
    lines.push(`             observed  ${r.observed}`);
    lines.push(`             expected  ${r.expected}`);
    lines.push(`             source    ${r.source}`);
    lines.push(`             reason    ${r.reason}`);
  }
  for (const s of b.sources.filter((x) => x.status === 'down'))
    lines.push('', `${s.name} is down: ${s.error}`);
  lines.push('', v.summary);
  if (v.budget) {
    const explained = explainLines(v, b);
    lines.push(...(opts.explain ? explained : explained.slice(0, 1)));
  }
  if (bundlePath) lines.push(`evidence: ${bundlePath} (replay: clover-cd gate --replay ${bundlePath})`);
  return lines.join('\n');
}

const xml = (s: string) =>
  s
    .replace(
      /[&<>"']/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!,
    )
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, ''); // eslint-disable-line no-control-regex -- XML 1.0 forbids these characters

/**
 * A verdict no rule carries (a source down → error, too few samples → inconclusive) gets its own testcase, so the
 * junit step shows what the exit code says: exit 4 an <error>, exit 3 <skipped> with the reason, exit 1 a <failure>.
 */
function verdictCase(v: Verdict, b: EvidenceBundle): RuleResult | undefined {
  if (v.outcome === 'pass' || v.results.some((r) => r.outcome === v.outcome)) return undefined;
  const down = b.sources
    .filter((s) => s.status === 'down')
    .map((s) => `${s.name} is down: ${s.error ?? 'unreachable'}`);
  const reason = [v.summary, ...down].join('; ');
  return {
    rule: 'verdict',
    outcome: v.outcome,
    observed: v.outcome,
    expected: 'pass',
    source: b.sources.map((s) => `${s.name} ${s.status}`).join(', ') || 'none',
    reason,
  };
}

export function renderJUnit(v: Verdict, b: EvidenceBundle): string {
  const extra = verdictCase(v, b);
  const results = extra ? [...v.results, extra] : v.results;
  const count = (o: Outcome) => results.filter((r) => r.outcome === o).length;
  const suite = `clover-cd gate ${b.release}`;
  const seconds = ((b.window.end - b.window.start) / 1000).toFixed(3);
  const cases = results.map((r) => {
    const body = `observed: ${r.observed}\nexpected: ${r.expected}\nsource: ${r.source}\nreason: ${r.reason}`;
    const inner =
      r.outcome === 'fail'
        ? `<failure message="${xml(r.reason)}" type="gate.fail">${xml(body)}</failure>`
        : r.outcome === 'error'
          ? `<error message="${xml(r.reason)}" type="gate.error">${xml(body)}</error>`
          : r.outcome === 'inconclusive'
            ? `<skipped message="${xml(`inconclusive: ${r.reason}`)}"/>`
            : `<system-out>${xml(body)}</system-out>`;
    return `    <testcase classname="${xml(`clover-cd.gate.${b.release}`)}" name="${xml(r.rule)}" time="0">\n      ${inner}\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="clover-cd gate" tests="${results.length}" failures="${count('fail')}" errors="${count('error')}" skipped="${count('inconclusive')}">`,
    `  <testsuite name="${xml(suite)}" tests="${results.length}" failures="${count('fail')}" errors="${count('error')}" skipped="${count('inconclusive')}" time="${seconds}" timestamp="${new Date(b.window.end).toISOString().replace(/\.\d+Z$/, '')}">`,
    `    <properties><property name="verdict" value="${v.outcome}"/><property name="window" value="${xml(windowText(b))}"/></properties>`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

const md = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(v: Verdict, b: EvidenceBundle): string {
  return [
    `### ${ICON[v.outcome]} clover-cd gate: **${MARK[v.outcome]}** — ${b.release}`,
    '',
    `\`${b.service.name}\` ${b.service.stable} → ${b.service.candidate}${b.candidateWeight !== undefined ? ` at ${b.candidateWeight}%` : ''}; window ${windowText(b)}`,
    '',
    '| | rule | observed | expected | source | reason |',
    '|---|---|---|---|---|---|',
    ...v.results.map(
      (r) =>
        `| ${ICON[r.outcome]} | ${md(r.rule)} | ${md(r.observed)} | ${md(r.expected)} | ${md(r.source)} | ${md(r.reason)} |`,
    ),
    '',
    `${md(v.summary)}`,
    '',
    ...(v.budget
      ? [
          '<details><summary>false-alarm budget</summary>',
          '',
          '```',
          ...explainLines(v, b),
          '```',
          '</details>',
          '',
        ]
      : []),
  ].join('\n');
}
