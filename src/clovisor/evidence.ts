/**
 * L4 evidence from session records (pure): counts per version in a window, and the `l4` gate rule
 * (reset rate, retransmit rate, connect failures; absolute, and candidate vs baseline with `compare`).
 */
import type { GateRule } from '../spec/types.js';
import { parsePercent } from '../util/units.js';
import type { KernelStats, L4Counts, L4Evidence, OpenConnection, SessionRecord, Target } from './types.js';

export type L4Rule = Extract<GateRule, { l4: unknown }>['l4'];

function quantile(sorted: number[], q: number): number | undefined {
  if (!sorted.length) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Counts one version's sessions. A connection is counted once, at the server side when the traced workload
 * served it, at the client side when the workload called out (a workload's failed outbound connects count there).
 */
export function countSessions(records: SessionRecord[], open: OpenConnection[] = []): L4Counts {
  const c: L4Counts = {
    connections: 0,
    openConnections: 0,
    resetConnections: 0,
    resetsSent: 0,
    resetsReceived: 0,
    retransmits: 0,
    segmentsOut: 0,
    connectFailures: 0,
    workloads: [],
  };
  const hs: number[] = [];
  const workloads = new Set<string>();
  for (const r of records) {
    if (r.workload) workloads.add(r.workload);
    if (r.closeKind === 'connect-failed') {
      c.connectFailures++;
      continue;
    }
    if (r.closeKind === 'handshake-failed') continue;
    c.connections++;
    if (r.closeKind === 'reset') c.resetConnections++;
    c.resetsSent += r.resetsSent;
    c.resetsReceived += r.resetsReceived;
    c.retransmits += r.retransmits;
    c.segmentsOut += r.segsOut;
    if (r.connectMs !== undefined) hs.push(r.connectMs);
  }
  for (const o of open) {
    if (o.establishedAt === undefined) continue; // a handshake in progress is not a connection yet
    c.connections++;
    c.openConnections++;
    if (o.workload) workloads.add(o.workload);
  }
  if (c.connections) c.resetRate = c.resetConnections / c.connections;
  if (c.segmentsOut) c.retransmitRate = c.retransmits / c.segmentsOut;
  hs.sort((a, b) => a - b);
  c.handshakeP50Ms = quantile(hs, 0.5);
  c.handshakeP99Ms = quantile(hs, 0.99);
  c.workloads = [...workloads].sort();
  return c;
}

export function buildEvidence(
  records: SessionRecord[],
  window: { start: number; end: number },
  versions: string[],
  ctx: {
    service?: string;
    targets: Target[];
    lostEvents: number;
    kernel: KernelStats;
    open?: OpenConnection[];
  },
): L4Evidence {
  const ofService = (x: { service?: string }) => !ctx.service || !x.service || x.service === ctx.service;
  // A connection of the window: open at some point in it (closed in or after it, opened before its end).
  const inWindow = records.filter(
    (r) => r.closedAt >= window.start && (r.startedAt ?? r.closedAt) <= window.end && ofService(r),
  );
  // Open now and established before the window ended: it was a connection of the window.
  const open = (ctx.open ?? []).filter(
    (o) => o.establishedAt !== undefined && o.establishedAt <= window.end && ofService(o),
  );
  const out: Record<string, L4Counts> = {};
  for (const v of versions)
    out[v] = countSessions(
      inWindow.filter((r) => r.version === v),
      open.filter((o) => o.version === v),
    );
  const lost = ctx.lostEvents + ctx.kernel.eventsLost + ctx.kernel.connsFull;
  return {
    source: 'clovisor',
    window,
    service: ctx.service,
    versions: out,
    targets: ctx.targets
      .filter((t) => !ctx.service || !t.service || t.service === ctx.service)
      .map((t) => ({
        workload: t.workload,
        version: t.version,
        namespace: t.namespace,
        netns: t.netns,
        hostVeth: t.hostVeth,
        packetTier: t.packetTier,
      })),
    lost: { events: ctx.lostEvents, kernel: ctx.kernel },
    complete: lost === 0,
  };
}

export interface L4RuleResult {
  rule: 'l4';
  outcome: 'pass' | 'fail' | 'inconclusive' | 'error';
  observed: string;
  expected: string;
  source: string;
  reason: string;
}

const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${(x * 100).toFixed(2)}%`);

/**
 * Judges the `l4` rule on evidence. Absolute limits apply to the candidate; with `compare: true` the candidate's
 * rates may not exceed the baseline's by more than the limit (candidate − stable ≤ limit). Missing evidence, or
 * lost events with nothing failing, is inconclusive (never a pass); the gate decides from `required` / `requireL4`
 * whether an inconclusive l4 result blocks.
 */
export function evaluateL4Rule(
  rule: L4Rule,
  evidence: L4Evidence | undefined,
  versions: { stable: string; candidate: string },
  minConnections = 1,
): L4RuleResult {
  const source = 'clovisor (eBPF socket tier)';
  const expectedParts: string[] = [];
  if (rule.resetRate !== undefined)
    expectedParts.push(`reset rate ${rule.compare ? 'increase ' : ''}<= ${rule.resetRate}`);
  if (rule.retransmitRate !== undefined)
    expectedParts.push(`retransmit rate ${rule.compare ? 'increase ' : ''}<= ${rule.retransmitRate}`);
  if (rule.connectFailures !== undefined)
    expectedParts.push(`connect failures ${rule.compare ? 'above baseline ' : ''}<= ${rule.connectFailures}`);
  const expected = expectedParts.join(', ') || 'L4 evidence present';
  const cand = evidence?.versions[versions.candidate];
  const base = evidence?.versions[versions.stable];
  if (!evidence || !cand || cand.connections + cand.connectFailures < minConnections) {
    return {
      rule: 'l4',
      outcome: 'inconclusive',
      observed: cand ? `${cand.connections} connections of ${versions.candidate}` : 'no L4 evidence',
      expected,
      source,
      reason: `L4 evidence missing for ${versions.candidate}${rule.required ? ' and the rule requires it' : ''}`,
    };
  }
  if (rule.compare && (!base || base.connections < minConnections)) {
    return {
      rule: 'l4',
      outcome: 'inconclusive',
      observed: `${base?.connections ?? 0} connections of ${versions.stable}`,
      expected,
      source,
      reason: `no baseline L4 evidence for ${versions.stable}`,
    };
  }
  const failures: string[] = [];
  const observed: string[] = [];
  const check = (name: string, limit: string | undefined, c: number | undefined, b: number | undefined) => {
    if (limit === undefined) return;
    const max = parsePercent(limit);
    const value = c ?? 0;
    if (rule.compare) {
      const delta = value - (b ?? 0);
      observed.push(`${name} ${pct(value)} vs ${pct(b ?? 0)} baseline`);
      if (delta > max)
        failures.push(
          `${name} of ${versions.candidate} ${pct(value)} exceeds baseline ${pct(b ?? 0)} by ${pct(delta)} (> ${limit})`,
        );
    } else {
      observed.push(`${name} ${pct(value)}`);
      if (value > max) failures.push(`${name} of ${versions.candidate} ${pct(value)} > ${limit}`);
    }
  };
  check('reset rate', rule.resetRate, cand.resetRate, base?.resetRate);
  check('retransmit rate', rule.retransmitRate, cand.retransmitRate, base?.retransmitRate);
  if (rule.connectFailures !== undefined) {
    const excess = rule.compare ? cand.connectFailures - (base?.connectFailures ?? 0) : cand.connectFailures;
    observed.push(
      `connect failures ${cand.connectFailures}${rule.compare ? ` vs ${base?.connectFailures ?? 0} baseline` : ''}`,
    );
    if (excess > rule.connectFailures)
      failures.push(
        `connect failures of ${versions.candidate}: ${cand.connectFailures}${rule.compare ? ` (${excess} above baseline)` : ''} > ${rule.connectFailures}`,
      );
  }
  observed.push(
    `${cand.resetConnections}/${cand.connections} connections reset${cand.openConnections ? ` (${cand.openConnections} still open)` : ''}`,
  );
  if (!evidence.complete)
    observed.push(
      `events lost: ${evidence.lost.events + evidence.lost.kernel.eventsLost}, conns map full: ${evidence.lost.kernel.connsFull}`,
    );
  if (failures.length)
    return {
      rule: 'l4',
      outcome: 'fail',
      observed: observed.join('; '),
      expected,
      source,
      reason: failures.join('; '),
    };
  if (!evidence.complete) {
    return {
      rule: 'l4',
      outcome: 'inconclusive',
      observed: observed.join('; '),
      expected,
      source,
      reason: 'L4 events were lost in the window, so counts are a lower bound and a pass cannot be claimed',
    };
  }
  return {
    rule: 'l4',
    outcome: 'pass',
    observed: observed.join('; '),
    expected,
    source,
    reason: 'within limits',
  };
}
