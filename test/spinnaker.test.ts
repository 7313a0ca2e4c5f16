import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { freePort } from './helpers/ports.js';
import { executionExitCode, GateClient, gateAuthFrom } from '../src/services/spinnaker.js';

/**
 * A fake Spinnaker Gate that answers like the real one (reference §6.1): pipelineConfigs lookup by name
 * (404 when absent), POST /pipelines upsert by id with Front50's duplicate-name 400, POST
 * /pipelines/{app}/{name} → 202 {ref}, GET /pipelines/{id} executions that progress RUNNING → final.
 */
interface FakeGate {
  url: string;
  saved: Map<string, Record<string, unknown>>;
  requests: Array<{ method: string; url: string; auth?: string; body?: unknown }>;
  finalStatus: string;
  close(): Promise<void>;
}

const TOKEN = 's3cret-gate-token';

async function startFakeGate(): Promise<FakeGate> {
  const saved = new Map<string, Record<string, unknown>>();
  const executions = new Map<string, { polls: number; app: string; name: string }>();
  const requests: FakeGate['requests'] = [];
  const state = { finalStatus: 'SUCCEEDED' };
  const readBody = (req: IncomingMessage) =>
    new Promise<unknown>((resolve) => {
      let data = '';
      req.on('data', (d) => (data += d));
      req.on('end', () => resolve(data ? JSON.parse(data) : undefined));
    });
  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req);
    requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
    const send = (status: number, payload?: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    const error = (status: number, message: string) =>
      send(status, {
        error: status === 400 ? 'Bad Request' : 'Not Found',
        message,
        status,
        timestamp: Date.now(),
      });
    if (req.headers.authorization !== `Bearer ${TOKEN}`)
      return send(401, {
        error: 'Unauthorized',
        message: 'Full authentication is required to access this resource',
        status: 401,
      });
    const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
    let m: RegExpExecArray | null;
    if (req.method === 'GET' && (m = /^\/applications\/([^/]+)\/pipelineConfigs\/(.+)$/.exec(path))) {
      const p = [...saved.values()].find(
        (x) => x.application === m![1] && String(x.name).toLowerCase() === m![2].toLowerCase(),
      );
      return p ? send(200, p) : error(404, `Pipeline config (application: ${m[1]}, name: ${m[2]}) not found`);
    }
    if (req.method === 'POST' && path === '/pipelines') {
      const p = body as Record<string, unknown>;
      if (!p?.application || !p?.name) return error(400, 'A pipeline requires name and application fields');
      const dup = [...saved.values()].find(
        (x) =>
          x.application === p.application &&
          String(x.name).toLowerCase() === String(p.name).toLowerCase() &&
          x.id !== p.id,
      );
      if (dup)
        return error(400, `A pipeline with name ${p.name} already exists in application ${p.application}`);
      if ((p.stages as unknown[]).length > 40) return error(400, 'Pipeline has too many stages');
      const id = (p.id as string) ?? `gen-${saved.size + 1}`;
      saved.set(id, { ...p, id, updateTs: String(Date.now()) });
      return send(200);
    }
    if (req.method === 'POST' && (m = /^\/pipelines\/([^/]+)\/(.+)$/.exec(path))) {
      const p = [...saved.values()].find(
        (x) => x.application === m![1] && (x.name === m![2] || x.id === m![2]),
      );
      if (!p) return error(404, `Pipeline not found (application: ${m[1]}, pipelineNameOrId: ${m[2]})`);
      const id = `01EXEC${executions.size + 1}`;
      executions.set(id, { polls: 0, app: m[1], name: String(p.name) });
      return send(202, { ref: `/pipelines/${id}` });
    }
    if (req.method === 'GET' && (m = /^\/pipelines\/([^/]+)$/.exec(path))) {
      const e = executions.get(m[1]);
      if (!e) return error(404, `Execution not found: ${m[1]}`);
      e.polls++;
      const status = e.polls >= 3 ? state.finalStatus : 'RUNNING';
      return send(200, {
        id: m[1],
        application: e.app,
        name: e.name,
        status,
        stages: [
          {
            id: 's1',
            refId: '1',
            name: 'Deploy v2',
            type: 'deployManifest',
            status: e.polls >= 2 ? 'SUCCEEDED' : 'RUNNING',
          },
        ],
      });
    }
    return error(404, `no handler for ${req.method} ${path}`);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}`,
    saved,
    requests,
    get finalStatus() {
      return state.finalStatus;
    },
    set finalStatus(v: string) {
      state.finalStatus = v;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let gate: FakeGate;
let tmp: string;
const env = () => ({ SPINNAKER_TOKEN: TOKEN, SPINNAKER_GATE_URL: gate.url });
beforeAll(async () => {
  gate = await startFakeGate();
  tmp = mkdtempSync(join(tmpdir(), 'spinnaker-test-'));
});
afterAll(async () => {
  await gate.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('pipeline save / execute / status against Gate', () => {
  it('saves a rendered spec, then updates the same pipeline in place with the id found by name', async () => {
    const first = await runCli(['pipeline', 'save', 'examples/sdc-canary.yaml', '--output', 'json'], {
      env: env(),
    });
    expect(first.stderr).not.toContain(TOKEN);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)[0]).toMatchObject({
      application: 'sdc',
      name: 'http-lb-canary',
      action: 'created',
    });
    expect(gate.saved.size).toBe(1);
    // A pipeline created earlier in the UI under a different id: the save must reuse that id.
    const [[oldId, config]] = [...gate.saved.entries()];
    gate.saved.delete(oldId);
    gate.saved.set('ui-created-id', { ...config, id: 'ui-created-id' });
    const second = await runCli(['pipeline', 'save', 'examples/sdc-canary.yaml', '--output', 'json'], {
      env: env(),
    });
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)[0]).toMatchObject({ id: 'ui-created-id', action: 'updated' });
    expect(gate.saved.size).toBe(1);
    const posts = gate.requests.filter((r) => r.method === 'POST' && r.url === '/pipelines');
    expect((posts[posts.length - 1].body as { id: string }).id).toBe('ui-created-id');
  });

  it("shows Gate's 400 body and exits 2", async () => {
    const p = JSON.parse((await runCli(['pipeline', 'render', 'examples/sdc-canary.yaml'])).stdout);
    p.name = 'too-big';
    for (let i = p.stages.length; i < 45; i++)
      p.stages.push({
        refId: `w${i}`,
        requisiteStageRefIds: [p.stages[p.stages.length - 1].refId],
        type: 'wait',
        name: `Wait ${i}`,
        waitTime: 1,
      });
    const file = join(tmp, 'big.json');
    writeFileSync(file, JSON.stringify(p));
    const r = await runCli(['pipeline', 'save', file], { env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Pipeline has too many stages');
  });

  it('sends nothing when the pipeline JSON is invalid', async () => {
    const before = gate.requests.length;
    const file = join(tmp, 'invalid.json');
    writeFileSync(
      file,
      JSON.stringify({
        application: 'sdc',
        name: 'x',
        spelEvaluator: 'v4',
        stages: [{ refId: 1, type: 'wait', name: 'w', requisiteStageRefIds: [] }],
      }),
    );
    const r = await runCli(['pipeline', 'save', file], { env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/stages\[0\]\.refId/);
    expect(gate.requests.length).toBe(before);
  });

  it('executes with parameters and follows the execution to SUCCEEDED / TERMINAL', async () => {
    const client = new GateClient(gate.url, gateAuthFrom({}, { SPINNAKER_TOKEN: TOKEN }));
    const id = await client.executePipeline('sdc', 'http-lb-canary', { tag: 'opnfv-7.0.0' });
    expect(id).toMatch(/^01EXEC\d+$/);
    const trigger = gate.requests.filter((r) => r.url === '/pipelines/sdc/http-lb-canary').pop()!.body;
    expect(trigger).toMatchObject({ type: 'manual', parameters: { tag: 'opnfv-7.0.0' } });
    expect((await client.getExecution(id)).status).toBe('RUNNING');
    const done = await client.waitForExecution(id, { intervalMs: 20 });
    expect(done.status).toBe('SUCCEEDED');
    expect(executionExitCode(done.status)).toBe(0);
    gate.finalStatus = 'TERMINAL';
    const id2 = await client.executePipeline('sdc', 'http-lb-canary');
    // The CLI prints the verdict and maps TERMINAL to exit 1.
    const failed = await runCli(
      ['pipeline', 'status', id2, '--wait', '--interval', '0.05', '--output', 'json'],
      { env: env() },
    );
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout).status).toBe('TERMINAL');
    gate.finalStatus = 'SUCCEEDED';
  }, 120_000);

  it('exits 2 for an unknown pipeline, 4 for bad credentials and for an unreachable Gate, never printing the secret', async () => {
    const missing = await runCli(['pipeline', 'execute', 'sdc', 'no-such-pipeline'], { env: env() });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no pipeline "no-such-pipeline"');
    const denied = await runCli(['pipeline', 'status', '01EXEC1'], {
      env: { SPINNAKER_GATE_URL: gate.url, SPINNAKER_TOKEN: 'wrong-token-value' },
    });
    expect(denied.code).toBe(4);
    expect(denied.stderr).toContain('HTTP 401');
    expect(denied.stderr).not.toContain('wrong-token-value');
    const port = await freePort();
    const down = await runCli(['pipeline', 'status', '01EXEC1', '--gate', `http://127.0.0.1:${port}`], {
      env: { SPINNAKER_TOKEN: TOKEN },
    });
    expect(down.code).toBe(4);
    expect(down.stderr).toContain('Spinnaker Gate');
    expect(down.stderr).not.toContain(TOKEN);
  }, 120_000);
});
