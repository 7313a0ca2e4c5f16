/**
 * Stage server request bodies, at the HTTP level only (the server is another module's): a mutated start
 * request is 202 or a 4xx naming a field, never a 5xx or a dropped connection. In-memory job store; the stage
 * functions are stubs that succeed at once, so an accepted body changes nothing outside the test.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { startStageService, type StageRegistry, type StageService } from '../../src/stages/server/index.js';
import { expectActionable, mutationOf, params, REPO } from './helpers.js';

const TOKEN = 'tok-fuzz-9c2e4a';
const ok = async () => ({ outcome: 'succeeded' as const, message: 'stub' });
const registry = { traffic: ok, gate: ok, promote: ok, rollback: ok, load: ok, deploy: ok } as unknown as StageRegistry;
const spec = JSON.parse(JSON.stringify(yaml.load(readFileSync(`${REPO}examples/sdc-canary.yaml`, 'utf8'))));
const body = { spec, weight: 10, window: '30s', execution: { id: '01HX', pipeline: 'p' } };
let svc: StageService;

beforeAll(async () => {
  svc = await startStageService({ port: 0, host: '127.0.0.1', registry, auth: { token: TOKEN }, maxBodyBytes: 256 * 1024, contentDir: `${REPO}examples` });
});
afterAll(async () => svc?.stop());

const post = (path: string, payload: string) => fetch(`${svc.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', Authorization: `Bearer ${TOKEN}` }, body: payload });

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
    await fc.assert(fc.asyncProperty(mutationOf(body), async ({ doc }) => check(JSON.stringify(doc) ?? '')), params(120));
  });

  it('text that is not a request is a 4xx', async () => {
    const text = fc.oneof(fc.string({ maxLength: 60 }), fc.json({ maxDepth: 3 }), fc.constantFrom('{{{', '[]', 'null', '{"spec":5}', `{"spec":${'['.repeat(3000)}${']'.repeat(3000)}}`));
    await fc.assert(fc.asyncProperty(text, check), params(80));
  });
});
