/**
 * Does observed traffic follow a target? The same check for every mesh: a weighted target is a binomial check
 * of the candidate's share of the requests counted per version; a match route has no share to check.
 */
import type { TrafficTarget } from '../canary/plan.js';
import { checkSplit } from '../validators/rules.js';
import type { SplitCheck } from './types.js';

export function verifySplit(
  target: TrafficTarget,
  observed: { stable: number; candidate: number },
  confidence: number,
): SplitCheck {
  // A match route sends the requests that match, a mirror copies them: neither has a share to check.
  if (target.matchRoute)
    return {
      outcome: 'pass',
      reason: 'match route: the candidate gets the requests that match, not a share',
    };
  return checkSplit(observed, target.weight, confidence);
}
