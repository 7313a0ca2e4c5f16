/**
 * Stage server request bodies, at the HTTP level only (the server is another module's): a mutated start
 * request is 202 or a 4xx naming a field, never a 5xx or a dropped connection. In-memory job store; the stage
 * functions are stubs that succeed at once, so an accepted body changes nothing outside the test. What a
 * request needs from the release's state is checked against the sandbox's object store (the platform the
 * sandbox serves), holding the SDC sample's routes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { sdcManifests } from '../../src/sandbox/index.js';
import { ObjectStore } from '../../src/sandbox/objects.js';
import { SandboxPlatform } from '../../src/sandbox/platform.js';
import { ReleaseEngine } from '../../src/stages/engine/index.js';
import { stageAdmission } from '../../src/stages/actions.js';
import { startStageService, type StageRegistry, type StageService } from '../../src/server/index.js';
import { expectActionable, mutationOf, params, REPO } from './helpers.js';

const TOKEN = 'tok-fuzz-9c2e4a';
const ok = async () => ({ outcome: 'succeeded' as const, message: 'stub' });
const registry = {
  traffic: ok,
  gate: ok,
  promote: ok,
  rollback: ok,
  load: ok,
  deploy: ok,
} as unknown as StageRegistry;
const spec = JSON.parse(JSON.stringify(yaml.load(readFileSync(`${REPO}examples/sdc-canary.yaml`, 'utf8'))));
const body = { spec, weight: 10, window: '30s', execution: { id: '01HX', pipeline: 'p' } };
let svc: StageService;
const platform = new SandboxPlatform(
  new ObjectStore(),
  'fuzz object store',
  () => true,
  () => ({}),
);

beforeAll(async () => {
  await platform.apply(sdcManifests());
  svc = await startStageService({
    port: 0,
    host: '127.0.0.1',
    registry,
    auth: { token: TOKEN },
    maxBodyBytes: 256 * 1024,
    contentDir: `${REPO}examples`,
    admit: stageAdmission({ platform }),
  });
});
afterAll(async () => svc?.stop());

const post = (path: string, payload: string) =>
  fetch(`${svc.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', Authorization: `Bearer ${TOKEN}` },
    body: payload,
  });

async function check(payload: string): Promise<void> {
  const res = await post(`/api/v1/releases/${spec.metadata.name}/traffic`, payload);
  expect(res.status).toBeLessThan(500);
  const text = await res.text();
  if (res.status >= 400 && res.status !== 409) {
    const json = JSON.parse(text) as { error: string; problems?: Array<{ path: string; message: string }> };
    expect(json.error).toBeTruthy();
    for (const p of json.problems ?? []) expectActionable(p.message);
  }
}

describe('stage server request fuzz', () => {
  it('a mutated start request is accepted or a 4xx naming the field', async () => {
    await fc.assert(
      fc.asyncProperty(mutationOf(body), async ({ doc }) => check(JSON.stringify(doc) ?? '')),
      params(120),
    );
  });

  it('text that is not a request is a 4xx', async () => {
    const text = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.json({ maxDepth: 3 }),
      fc.constantFrom('{{{', '[]', 'null', '{"spec":5}', `{"spec":${'['.repeat(3000)}${']'.repeat(3000)}}`),
    );
    await fc.assert(fc.asyncProperty(text, check), params(80));
  });
});

describe('what the server knows before its 202', () => {
  const other = { ...spec, metadata: { name: 'not-started' } }; // the same routes, a release that never ran

  beforeAll(async () => {
    await new ReleaseEngine(platform, spec).shift(0); // http-lb-canary stands at step 1
  });

  it('an action without a step is a 400 naming "step" unless the release stands at one; a release not in progress is a 400', async () => {
    const req = fc.record({
      action: fc.constantFrom('traffic', 'load', 'gate', 'promote', 'rollback', 'deploy'),
      step: fc.constantFrom(undefined, 1, 2),
      started: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(req, async ({ action, step, started }) => {
        const s = started ? spec : other;
        const res = await post(
          `/api/v1/releases/${s.metadata.name}/${action}`,
          JSON.stringify({ spec: s, ...(step ? { step } : {}) }),
        );
        const body = (await res.json()) as { problems?: Array<{ path: string; message: string }> };
        // Accepted (202, or 409 while the previous stub job is still finishing) exactly when the release allows it.
        const needsRelease =
          ['load', 'gate', 'promote'].includes(action) || (action === 'traffic' && step === 2);
        const needsStep = action === 'traffic' || ((action === 'load' || action === 'gate') && !started);
        const refused = (needsRelease && !started) || (needsStep && step === undefined);
        expect({ action, step, started, status: res.status }).toEqual({
          action,
          step,
          started,
          status: refused ? 400 : expect.any(Number),
        });
        if (!refused) expect([202, 409]).toContain(res.status);
        else {
          expect(body.problems?.length).toBeGreaterThan(0);
          body.problems!.forEach((p) => expectActionable(p.message));
          if (step === undefined && action !== 'promote')
            expect(body.problems!.map((p) => p.path)).toContain(action === 'traffic' ? 'weight' : 'step'); // traffic: "weight" or "step"
        }
      }),
      params(150),
    );
  });

  it('a request line of any length is answered (404, 414, or 431 beside headers), never a reset connection', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.integer({ min: 1, max: 20_000 }), fc.integer({ min: 1, max: 400_000 })),
        async (n) => {
          const res = await fetch(`${svc.url}/api/v1/jobs/${'j'.repeat(n)}`, {
            headers: { Authorization: `Bearer ${TOKEN}` },
          });
          const body = (await res.json()) as { error: string };
          expect(body.error).toBeTruthy();
          if (n < 15_000) expect(res.status).toBe(404);
          else if (n > 17_000) expect(res.status).toBe(414);
          else expect([404, 414, 431]).toContain(res.status);
        },
      ),
      params(100),
    );
  });
});
