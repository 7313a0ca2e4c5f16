import type { InputProblem } from '../util/errors.js';
import { validateAgainst } from '../util/schema.js';
import { DURATION_PATTERN } from '../util/units.js';
import { durationRangeProblem } from '../spec/limits.js';
import { validateSpec } from '../spec/validate.js';
import type { ReleaseSpec } from '../spec/types.js';
import { buildPlan, stepProblem } from '../canary/index.js';
import { loadPlan } from '../jmeter/index.js';
import { InvalidInputError } from '../util/errors.js';
import { splitInlineManifests } from '../stages/inline-manifests.js';
import { inlineContent, type ContentDir } from './content.js';
import { STAGE_ACTIONS, type StageAction, type StageParams } from './types.js';

/**
 * Validation of a start request: the body's fields, then the embedded release spec, then
 * what the job will need (the step exists in the plan, the load plan is valid), so a job that gets its 202
 * does not fail later on its input. Documents the spec names are read from the content directory only
 * (`content.ts`); after this, nothing in the job reads a file the request named.
 */
const bodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['spec'],
  properties: {
    spec: { type: 'object', description: 'the whole release spec' },
    weight: {
      type: 'integer',
      minimum: 0,
      maximum: 100,
      description: 'a whole percentage (older pipelines; new ones send step)',
    },
    step: { type: 'integer', minimum: 1, description: '1-based index of a step of the release plan' },
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

export async function parseStartRequest(
  release: string,
  action: string,
  body: unknown,
  content?: ContentDir,
): Promise<{ ok: true; value: StartRequest } | { ok: false; problems: InputProblem[] }> {
  const where = 'request body';
  if (!(STAGE_ACTIONS as readonly string[]).includes(action)) {
    return {
      ok: false,
      problems: [
        {
          path: 'action',
          message: `unknown action "${action}"; expected one of ${STAGE_ACTIONS.join(', ')}`,
        },
      ],
    };
  }
  if (!RELEASE_NAME.test(release)) {
    return {
      ok: false,
      problems: [
        {
          path: 'release',
          message: `"${release}" is not a release name (lower-case letters, digits, "-" and ".")`,
        },
      ],
    };
  }
  if (body === undefined)
    return {
      ok: false,
      problems: [
        {
          file: where,
          path: '',
          message: 'expected a JSON object {"spec": {…}, "step": n, "execution": {…}}, found an empty body',
        },
      ],
    };
  if (body && typeof body === 'object' && !Array.isArray(body))
    coerceNumbers(body as Record<string, unknown>);
  const problems = validateAgainst(bodySchema, body, where);
  const windowProblem = durationRangeProblem((body as { window?: unknown } | null)?.window);
  if (windowProblem) problems.push({ file: where, path: 'window', message: windowProblem });
  if (problems.length) return { ok: false, problems };
  const b = body as { spec: ReleaseSpec } & StageParams;
  const inSpec = (ps: InputProblem[]) => ps.map((p) => ({ ...p, path: p.path ? `spec.${p.path}` : 'spec' }));
  // Named plans and manifests: from the operator's content directory only, then handled as inline documents.
  const contentProblems = await inlineContent(b.spec, content, where);
  if (contentProblems.length) return { ok: false, problems: inSpec(contentProblems) };
  // Rendered pipelines carry the candidate manifests inline (the server cannot read the spec's repository).
  const inline = splitInlineManifests(b.spec, where);
  const specProblems = inSpec([...inline.problems, ...validateSpec(inline.spec, where)]);
  if (specProblems.some((p) => p.severity !== 'warning')) return { ok: false, problems: specProblems };
  b.spec = inline.spec as ReleaseSpec;
  if (b.spec.metadata.name !== release) {
    return {
      ok: false,
      problems: [
        {
          file: where,
          path: 'spec.metadata.name',
          message: `"${b.spec.metadata.name}" differs from the release in the URL, "${release}"`,
        },
      ],
    };
  }
  if ((action as StageAction) === 'traffic' && b.weight === undefined && b.step === undefined) {
    return {
      ok: false,
      problems: [
        {
          file: where,
          path: 'weight',
          message: 'action "traffic" needs "weight" (0-100) or "step" (index of a canary step)',
        },
      ],
    };
  }
  const needs = jobNeeds(action as StageAction, b, where);
  if (needs.length) return { ok: false, problems: needs };
  const params: StageParams = {};
  if (b.weight !== undefined) params.weight = b.weight;
  if (b.step !== undefined) params.step = b.step;
  if (b.window !== undefined) params.window = b.window;
  if (b.execution) params.execution = b.execution;
  return { ok: true, value: { spec: b.spec, params } };
}

/** What the stage will need, checked now (a 400 Orca fails fast on) rather than when the job runs. */
function jobNeeds(
  action: StageAction,
  b: { spec: ReleaseSpec } & StageParams,
  where: string,
): InputProblem[] {
  const problems: InputProblem[] = [];
  if (b.step !== undefined) {
    try {
      const problem = stepProblem(buildPlan(b.spec), b.step);
      if (problem) problems.push({ file: where, path: 'step', message: problem });
    } catch (err) {
      problems.push(...inputProblems(err, 'step', where));
    }
  }
  if (action === 'load') {
    if (!b.spec.load)
      problems.push({
        file: where,
        path: 'spec.load',
        message:
          'action "load" needs a load section (load.plan, inline or a name in the server\'s content directory)',
      });
    else {
      try {
        loadPlan(b.spec.load.plan as object);
      } catch (err) {
        problems.push(
          ...inputProblems(err, 'spec.load.plan', where).map((p) =>
            p.path.startsWith('spec.')
              ? p
              : { ...p, path: p.path ? `spec.load.plan.${p.path}` : 'spec.load.plan' },
          ),
        );
      }
    }
  }
  return problems;
}

function inputProblems(err: unknown, path: string, where: string): InputProblem[] {
  if (!(err instanceof InvalidInputError)) throw err;
  return err.problems.length
    ? err.problems.map((p) => ({ ...p, file: where }))
    : [{ file: where, path, message: err.message }];
}
