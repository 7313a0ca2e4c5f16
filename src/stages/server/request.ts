import type { InputProblem } from '../../util/errors.js';
import { validateAgainst } from '../../util/schema.js';
import { DURATION_PATTERN } from '../../util/units.js';
import { validateSpec } from '../../spec/validate.js';
import type { ReleaseSpec } from '../../spec/types.js';
import { splitInlineManifests } from '../inline-manifests.js';
import { STAGE_ACTIONS, type StageAction, type StageParams } from './types.js';

/** Validation of a start request (contract [E]): the body's fields, then the embedded release spec. */
const bodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['spec'],
  properties: {
    spec: { type: 'object', description: 'the whole release spec' },
    weight: { type: 'number', minimum: 0, maximum: 100 },
    step: { type: 'integer', minimum: 0 },
    window: { type: 'string', pattern: DURATION_PATTERN, description: 'a duration such as 30s or 2m' },
    execution: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'pipeline'],
      properties: { id: { type: 'string', minLength: 1 }, pipeline: { type: 'string', minLength: 1 } },
    },
  },
};

export const RELEASE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export interface StartRequest {
  spec: ReleaseSpec;
  params: StageParams;
}

/** Orca turns a value that is exactly one `${expr}` into its typed result, but text templates give strings. */
function coerceNumbers(body: Record<string, unknown>): void {
  for (const k of ['weight', 'step']) {
    const v = body[k];
    if (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v.trim())) body[k] = Number(v);
  }
}

export function parseStartRequest(
  release: string,
  action: string,
  body: unknown,
  baseDir: string,
): { ok: true; value: StartRequest } | { ok: false; problems: InputProblem[] } {
  const where = 'request body';
  if (!(STAGE_ACTIONS as readonly string[]).includes(action)) {
    return { ok: false, problems: [{ path: 'action', message: `unknown action "${action}"; expected one of ${STAGE_ACTIONS.join(', ')}` }] };
  }
  if (!RELEASE_NAME.test(release)) {
    return { ok: false, problems: [{ path: 'release', message: `"${release}" is not a release name (lower-case letters, digits, "-" and ".")` }] };
  }
  if (body && typeof body === 'object' && !Array.isArray(body)) coerceNumbers(body as Record<string, unknown>);
  const problems = validateAgainst(bodySchema, body, where);
  if (problems.length) return { ok: false, problems };
  const b = body as { spec: ReleaseSpec } & StageParams;
  // Rendered pipelines carry the candidate manifests inline (the server cannot read the spec's repository).
  const inline = splitInlineManifests(b.spec, where);
  const specProblems = [...inline.problems, ...validateSpec(inline.spec, where, baseDir)].map((p) => ({ ...p, path: p.path ? `spec.${p.path}` : 'spec' }));
  if (specProblems.some((p) => p.severity !== 'warning')) return { ok: false, problems: specProblems };
  b.spec = inline.spec as ReleaseSpec;
  if (b.spec.metadata.name !== release) {
    return { ok: false, problems: [{ file: where, path: 'spec.metadata.name', message: `"${b.spec.metadata.name}" differs from the release in the URL, "${release}"` }] };
  }
  if ((action as StageAction) === 'traffic' && b.weight === undefined && b.step === undefined) {
    return { ok: false, problems: [{ file: where, path: 'weight', message: 'action "traffic" needs "weight" (0-100) or "step" (index of a canary step)' }] };
  }
  const params: StageParams = {};
  if (b.weight !== undefined) params.weight = b.weight;
  if (b.step !== undefined) params.step = b.step;
  if (b.window !== undefined) params.window = b.window;
  if (b.execution) params.execution = b.execution;
  return { ok: true, value: { spec: b.spec, params } };
}
