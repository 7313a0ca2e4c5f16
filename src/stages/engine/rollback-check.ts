/**
 * After a rollback wrote the routes back to stable: is the candidate really getting nothing? Checked on
 * observed traffic — short bursts of the spec's load, or, when the load cannot be sent (no load section,
 * a plan that cannot be read any more, a load that fails to start), the traffic the service already has.
 * A rollback never fails for want of its load plan: the routes are what matter, and the check says which
 * traffic it saw.
 */
import type { ReleaseState } from '../../canary/index.js';
import type { Platform } from '../../services/platform.js';
import type { ReleaseSpec } from '../../spec/types.js';
import { sleep } from '../../util/retry.js';
import { canObserveSplit, observeSplit, openWindow } from '../gate.js';
import { readLoadPlan, runLoadStage } from '../load.js';

/** How many checks are made before "the candidate still gets traffic" is believed. */
const VERIFY_ATTEMPTS = 3;

export interface RollbackCheck {
  check: 'observed' | 'unobserved' | 'unchecked' | 'failed';
  /** What the check watched: the spec's load, or the service's live traffic only. */
  traffic?: 'load' | 'live';
  /** Why the load was not used, or why nothing was checked. */
  note?: string;
  observed?: { stable: number; candidate: number };
  /** When failed: what still reached the candidate. */
  reason?: string;
}

const message = (err: unknown) => (err instanceof Error ? err.message.split('\n')[0] : String(err));

/**
 * Requests of a stopped load still in flight, or a mesh still applying the change, can reach the candidate
 * in the first check, so a bounded number of checks is made. `seconds` per check; 0 skips it.
 */
export async function verifyOnStable(
  platform: Platform,
  spec: ReleaseSpec,
  seconds: number,
): Promise<RollbackCheck> {
  if (seconds <= 0) return { check: 'unchecked', note: 'the check was turned off' };
  if (!canObserveSplit(spec, platform.endpoints()))
    return { check: 'unchecked', note: 'no metrics to observe traffic with on this platform' };
  const liveBecause = (why: string): Pick<RollbackCheck, 'traffic' | 'note'> => ({
    traffic: 'live',
    note: `${why}: checked with the traffic the service already had`,
  });
  let source: Pick<RollbackCheck, 'traffic' | 'note'> = spec.load
    ? { traffic: 'load' }
    : liveBecause('the spec has no load');
  if (source.traffic === 'load') {
    try {
      await readLoadPlan(spec);
    } catch (err) {
      source = liveBecause(`the load could not be sent (${message(err)})`);
    }
  }
  let observed = { stable: 0, candidate: 0 };
  for (let attempt = 1; attempt <= VERIFY_ATTEMPTS; attempt++) {
    const w = await openWindow(spec, platform.endpoints());
    if (source.traffic === 'load') {
      try {
        // The spec's plan from this process's built-in engine: a JVM (JMeter) or engines the platform would
        // start could spend the whole check starting, and a check that sent nothing cannot observe anything.
        await runLoadStage(platform, spec, { durationS: seconds, engine: 'builtin' });
      } catch (err) {
        source = liveBecause(`the load could not be sent (${message(err)})`);
      }
    }
    // Live traffic is watched as long as a burst would last (never cut short: an interrupt is what rolls back).
    if (source.traffic === 'live') await sleep(seconds * 1000);
    observed = await observeSplit(spec, platform.endpoints(), w);
    if (observed.candidate === 0)
      return { check: observed.stable > 0 ? 'observed' : 'unobserved', ...source, observed };
  }
  const n = observed.stable + observed.candidate;
  const seen = source.traffic === 'load' ? 'requests of the load' : 'live requests';
  return {
    check: 'failed',
    ...source,
    observed,
    reason: `${observed.candidate} of ${n} ${seen} still reached ${spec.service.candidate} in each of ${VERIFY_ATTEMPTS} checks after the routes went back to ${spec.service.stable}`,
  };
}

/** One line for people: how a rollback was verified, from the state it recorded. */
export function describeRollbackCheck(
  spec: ReleaseSpec,
  s: ReleaseState,
  observed?: { stable: number; candidate: number },
): string {
  const { stable, candidate } = spec.service;
  const how = s.rollbackTraffic === 'live' ? 'live traffic' : "the spec's load";
  const why = s.rollbackNote ? ` (${s.rollbackNote})` : '';
  if (s.phase === 'failed') return s.reason ?? 'the rollback could not be verified';
  switch (s.rollbackCheck) {
    case 'observed':
      return `verified on observed traffic (${how}): ${observed ? `${observed.stable} requests on ${stable}, ` : ''}none on ${candidate}${why}`;
    case 'unobserved':
      return `not verified: no requests reached the service during the check (${how})${why}`;
    default:
      return `not verified: ${s.rollbackNote ?? 'nothing to check with'}`;
  }
}
