/**
 * HTML reports: the gate report (one self-contained page per verdict, also written beside each evidence
 * bundle) and the load report (a JTL over time). The pages carry their chart library and data; nothing is
 * fetched when they are opened.
 */
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { analyzeJtl, jtlSeries, type JtlAnalysis, type LoadReport } from '../jmeter/index.js';
import { redactDeep } from '../util/redact.js';
import type { EvidenceBundle, Verdict } from '../validators/index.js';
import { renderGateHtml } from './gate-html.js';
import { renderLoadHtml } from './load-html.js';

export { renderGateHtml } from './gate-html.js';
export { renderLoadHtml } from './load-html.js';
export { chartLibrary } from './page.js';

/** Where the gate report of an evidence bundle goes: the bundle's name with .html. */
export const gateHtmlPath = (bundlePath: string): string => bundlePath.replace(/\.json$/i, '') + '.html';

/** The gate report of a bundle (its own verdict unless one is given), secrets masked. */
export function gateHtml(
  bundle: EvidenceBundle,
  verdict?: Verdict,
  bundlePath?: string,
  opts: { nonce?: string } = {},
): string {
  const v = verdict ?? bundle.verdict;
  if (!v) throw new Error('the evidence bundle holds no verdict: judge it first (clover-cd gate --replay)');
  return renderGateHtml(redactDeep(v), redactDeep(bundle), {
    bundleName: bundlePath ? basename(bundlePath) : undefined,
    nonce: opts.nonce,
  });
}

/** Write `file` (default: beside the bundle); returns the path written. */
export function writeGateHtml(
  bundle: EvidenceBundle,
  verdict: Verdict | undefined,
  bundlePath?: string,
  file?: string,
): string {
  const out = file ?? gateHtmlPath(bundlePath ?? 'gate-report.json');
  writeFileSync(out, gateHtml(bundle, verdict, bundlePath));
  return out;
}

/** The load report of a JTL with its charts (a second streaming pass gives the time series). */
export async function loadHtml(report: LoadReport, analysis?: JtlAnalysis): Promise<string> {
  const a = analysis ?? (await analyzeJtl(report.jtl));
  const series = await jtlSeries(
    report.jtl,
    { firstTs: a.firstTs, lastEnd: a.lastEnd },
    {
      labels: Object.keys(report.summary.labels)
        .sort((x, y) => report.summary.labels[y].count - report.summary.labels[x].count)
        .slice(0, 12),
    },
  );
  return renderLoadHtml(redactDeep(report), series);
}
