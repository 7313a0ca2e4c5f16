/** Start requests the stage server refuses before a job exists (400 with the field path; Orca fails fast on 4xx). */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { parseStartRequest } from '../src/server/request.js';

const spec = yaml.load(readFileSync('examples/sdc-canary.yaml', 'utf8')) as Record<string, unknown>;
spec.load = { plan: yaml.load(readFileSync('examples/sdc-load.yaml', 'utf8')) };
const refused = async (body: unknown) => {
  const r = await parseStartRequest(
    'http-lb-canary',
    'traffic',
    body === undefined ? undefined : JSON.parse(JSON.stringify(body)),
  );
  return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
};

describe('stage server start requests', () => {
  it('refuses a window outside (0, 24h], a fractional weight, a step beyond the plan and an empty body', async () => {
    expect(await refused({ spec, step: 1, window: '0s' })).toEqual([
      'window: expected a duration longer than 0 and at most 24h, found "0s"',
    ]);
    expect(await refused({ spec, step: 1, window: '99999999999h' })).toEqual([
      'window: expected a duration longer than 0 and at most 24h, found "99999999999h"',
    ]);
    expect(await refused({ spec, weight: 10.5 })).toEqual(['weight: expected integer, found number 10.5']);
    expect(await refused({ spec, step: 99 })).toEqual([
      "step: step 99 is beyond the plan's 2 step(s) (1: weight 10%, 2: weight 50%); step must be 1..2",
    ]);
    expect((await refused(undefined))[0]).toMatch(/^: expected a JSON object .* found an empty body$/);
  });

  it('accepts a plan step, with the execution a pipeline sends', async () => {
    expect(await refused({ spec, step: 2, execution: { id: '01HX', pipeline: 'http-lb-canary' } })).toEqual(
      [],
    );
  });
});
