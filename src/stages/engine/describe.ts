/**
 * The engine's words: where a release stands, what an action is, and — after a write — what the routes and
 * the release state say now and which command finishes a release left half-way (for an error that follows).
 */
import type { ReleaseAction, ReleaseState } from '../../canary/index.js';
import type { RouterSnapshot } from '../../routers/index.js';
import type { ReleaseSpec } from '../../spec/types.js';
import type { Change } from '../../util/changes.js';

export const describeState = (s: ReleaseState): string =>
  `${s.phase}${s.step >= 0 ? ` at step ${s.step + 1}${s.shifted ? ` (${s.weight}%)` : ''}` : ''}`;

export const describeAction = (a: ReleaseAction): string =>
  'step' in a ? `${a.kind} step ${a.step + 1}` : a.kind === 'done' ? `done (exit ${a.exitCode})` : a.kind;

/** The command that finishes a release standing at `s` (none when it is finished). `spec` names the spec file. */
export function finishCommand(s: ReleaseState, spec: string): string | undefined {
  switch (s.phase) {
    case 'promoted':
    case 'rolledBack':
      return undefined;
    case 'rollingBack':
      return `clover-cd traffic rollback ${spec} finishes the rollback (clover-cd release run ${spec} --restart finishes it, then releases again)`;
    case 'failed':
      return `clover-cd release abort ${spec} checks the rollback again`;
    default:
      return `clover-cd release run ${spec} goes on from here; clover-cd release abort ${spec} rolls back`;
  }
}

/** What one write of the routes object left: its weights, the release state, how to finish. */
export function writtenChange(
  spec: ReleaseSpec,
  subject: string,
  snap: RouterSnapshot,
  state: ReleaseState | undefined,
  file = '<spec>',
): Change {
  const r = snap.routes;
  const { stable, candidate } = spec.service;
  const now = `${stable} ${r.stableWeight}% / ${candidate} ${r.weight}%${r.matchRoute ? ' + match route' : ''}${state ? `, release ${state.release} ${describeState(state)}` : ''}`;
  return { subject, now, finish: state && finishCommand(state, file) };
}
