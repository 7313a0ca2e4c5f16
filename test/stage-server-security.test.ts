import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import {
  startStageService,
  type StageOutcome,
  type StageRegistry,
  type StageService,
} from '../src/server/index.js';
import type { ReleaseSpec } from '../src/spec/types.js';
import { waitFor } from './helpers/ports.js';

/**
 * The stage server exposed to callers it cannot trust: it reads only files of the operator's content
 * directory, refuses before reading a body it would not use, bounds bodies/headers/JSON in size and time,
 * answers every client error with a 4xx naming the field, and validates what the job needs before 202.
 */
const TOKEN = 'sec-token-6b1f0e2a9d';
const bearer = { Authorization: `Bearer ${TOKEN}` };
const base = yaml.load(readFileSync('examples/sdc-canary.yaml', 'utf8')) as ReleaseSpec;
const specFor = (name: string, extra: Partial<ReleaseSpec> = {}): ReleaseSpec => ({
  ...base,
  metadata: { name },
  ...extra,
});

const root = mkdtempSync(join(tmpdir(), 'content-'));
const contentDir = join(root, 'content');
const outside = join(root, 'outside');
const received: Array<{ release: string; spec: ReleaseSpec }> = [];
const registry: StageRegistry = Object.fromEntries(
  (['traffic', 'load', 'gate'] as const).map((a) => [
    a,
    async (spec: ReleaseSpec): Promise<StageOutcome> => {
      received.push({ release: spec.metadata.name, spec });
      return { status: 'SUCCEEDED' };
    },
  ]),
);

let svc: StageService;
const logs: string[] = [];
beforeAll(async () => {
  mkdirSync(join(contentDir, 'plans', 'dir'), { recursive: true });
  mkdirSync(outside);
  copyFileSync('examples/sdc-load.yaml', join(contentDir, 'plans', 'sdc-load.yaml'));
  copyFileSync('examples/sdc-load.yaml', join(contentDir, 'sdc-load.yaml')); // the example spec's load.plan
  writeFileSync(join(contentDir, 'plans', 'big.yaml'), `# ${'x'.repeat(300 * 1024)}\n`);
  writeFileSync(join(outside, 'secret.yaml'), 'load_spec: {num_threads: 1}\n');
  symlinkSync(join(outside, 'secret.yaml'), join(contentDir, 'plans', 'link.yaml'));
  symlinkSync(outside, join(contentDir, 'plans', 'outdir'));
  // FIFOs: a server that opened one for reading would hang on it, so a prompt answer shows it did not.
  execFileSync('mkfifo', [join(contentDir, 'plans', 'fifo.yaml'), join(outside, 'fifo')]);
  svc = await startStageService({
    port: 0,
    host: '127.0.0.1',
    registry,
    auth: { token: TOKEN },
    contentDir,
    maxBodyBytes: 256 * 1024,
    bodyTimeoutMs: 400,
    headersTimeoutMs: 500,
    log: (l) => logs.push(l),
  });
});
afterAll(async () => {
  await svc?.stop();
  rmSync(root, { recursive: true, force: true });
});

const post = (path: string, body: unknown, headers: Record<string, string> = bearer) =>
  fetch(`${svc.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
const problemsOf = async (r: Response) =>
  ((await r.json()) as { problems: Array<{ path: string; message: string }> }).problems;

describe('files: only by name from the content directory', () => {
  const withPlan = (release: string, plan: unknown) => ({
    spec: specFor(release, { load: { plan, engine: 'builtin' } as ReleaseSpec['load'] }),
  });

  it.each([
    ['/etc/passwd', /absolute path/],
    ['/etc/shadow', /absolute path/],
    ['/proc/self/environ', /absolute path/],
    ['/dev/zero', /absolute path/],
    [join(outside, 'fifo'), /absolute path/],
    ['../outside/fifo', /"\." and "\.\."/],
    ['../x', /"\." and "\.\."/],
    ['plans/../../outside/secret.yaml', /"\." and "\.\."/],
    ['plans/dir', /not a regular file/],
    ['plans/fifo.yaml', /not a regular file/],
    ['plans/link.yaml', /leads outside the content directory/],
    ['plans/outdir/secret.yaml', /leads outside the content directory/],
    ['plans/big.yaml', /over the limit/],
    ['plans/missing.yaml', /not in the content directory/],
  ])('load.plan %s → 400 at spec.load.plan, answered at once, without the server path', async (plan, why) => {
    // A server that opened the FIFO would never answer: the test's own timeout catches that, not a clock.
    const r = await post('/api/v1/releases/rel-files/load', withPlan('rel-files', plan));
    expect(r.status).toBe(400);
    const text = await r.text();
    expect(JSON.parse(text).problems).toContainEqual({
      path: 'spec.load.plan',
      message: expect.stringMatching(why),
    });
    expect(text).not.toContain(root); // no absolute server path: no file-existence oracle
  });

  it('candidate manifests by name are read from the content directory the same way', async () => {
    const spec = specFor('rel-manifest', {
      service: { ...base.service, candidateManifests: ['/etc/passwd'] },
    });
    const r = await post('/api/v1/releases/rel-manifest/gate', { spec });
    expect(r.status).toBe(400);
    expect(await problemsOf(r)).toContainEqual(
      expect.objectContaining({ path: 'spec.service.candidateManifests[0]' }),
    );
  });

  it('a plan named in the content directory reaches the stage inline; without a content directory nothing is read', async () => {
    const r = await post('/api/v1/releases/rel-plan/load', withPlan('rel-plan', 'plans/sdc-load.yaml'));
    expect(r.status).toBe(202);
    await waitFor('the load stage ran', async () => received.some((x) => x.release === 'rel-plan'));
    expect(received.find((x) => x.release === 'rel-plan')!.spec.load!.plan).toMatchObject({
      load_spec: { num_threads: 4 },
    });
    const closed = await startStageService({ port: 0, host: '127.0.0.1', registry, auth: { token: TOKEN } });
    try {
      const r2 = await fetch(`${closed.url}/api/v1/releases/rel-plan2/load`, {
        method: 'POST',
        headers: bearer,
        body: JSON.stringify(withPlan('rel-plan2', 'plans/sdc-load.yaml')),
      });
      expect(r2.status).toBe(400);
      expect(await problemsOf(r2)).toContainEqual({
        path: 'spec.load.plan',
        message: expect.stringContaining('send the document inline'),
      });
    } finally {
      await closed.stop();
    }
  });
});

describe('client errors are 4xx with the field path', () => {
  it('a malformed URL → 400', async () => {
    for (const path of [
      '/api/v1/jobs/%E0%A4%A',
      '/api/v1/releases/%E0%A4%A/traffic',
      '/api/v1/releases/rel/%ZZ',
    ]) {
      const r = await fetch(`${svc.url}${path}`, {
        method: path.includes('jobs') ? 'GET' : 'POST',
        headers: bearer,
      });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { problems: unknown[] }).problems).toHaveLength(1);
    }
  });

  it('a 20,000-deep spec → 400 naming where, not 503', async () => {
    const deep = `{"spec":{"metadata":{"labels":${'['.repeat(20_000)}${']'.repeat(20_000)}}}}`;
    const r = await post('/api/v1/releases/rel-deep/gate', deep);
    expect(r.status).toBe(400);
    const [p] = await problemsOf(r);
    expect(p.path).toMatch(/^spec\.metadata\.labels\[0\]\[0\]/);
    expect(p.message).toMatch(/nested more than 64 levels/);
  });

  it('what the job needs is checked before the 202: step beyond the plan, load without a load section', async () => {
    const step = await post('/api/v1/releases/rel-step/traffic', { spec: specFor('rel-step'), step: 99 });
    expect(step.status).toBe(400);
    expect(await problemsOf(step)).toContainEqual({
      path: 'step',
      message: expect.stringContaining("beyond the plan's 2 step(s)"),
    });
    expect(
      (await post('/api/v1/releases/rel-step/traffic', { spec: specFor('rel-step'), step: 0 })).status,
    ).toBe(400);
    const { load: _load, ...noLoad } = specFor('rel-noload');
    const load = await post('/api/v1/releases/rel-noload/load', { spec: noLoad });
    expect(load.status).toBe(400);
    expect(await problemsOf(load)).toContainEqual(expect.objectContaining({ path: 'spec.load' }));
    const ok = await post('/api/v1/releases/rel-step/traffic', { spec: specFor('rel-step'), step: 2 });
    expect(ok.status).toBe(202);
  });

  it('GET /api/v1/jobs without ?release= is 400; a wrong method is 405', async () => {
    expect((await fetch(`${svc.url}/api/v1/jobs`, { headers: bearer })).status).toBe(400);
    expect((await fetch(`${svc.url}/api/v1/jobs/x`, { method: 'DELETE', headers: bearer })).status).toBe(405);
  });
});

describe('auth before the body; bodies and headers bounded in size and time', () => {
  /** A raw HTTP exchange: what the server sends back, and whether it closed the connection. */
  const raw = (head: string, body?: string) =>
    new Promise<{ text: string; closedAfterMs: number }>((resolve, reject) => {
      const started = Date.now();
      const s = connect(svc.port, '127.0.0.1', () => s.write(head + (body ?? '')));
      let text = '';
      s.on('data', (d) => (text += d));
      s.on('error', reject);
      s.on('close', () => resolve({ text, closedAfterMs: Date.now() - started }));
      setTimeout(() => s.destroy(), 10_000).unref();
    });

  it('401 is sent before any body byte arrives', async () => {
    const r = await new Promise<string>((resolve, reject) => {
      const s = connect(svc.port, '127.0.0.1', () =>
        s.write(
          'POST /api/v1/releases/rel-x/gate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n',
        ),
      );
      s.once('data', (d) => {
        resolve(String(d));
        s.destroy();
      });
      s.on('error', reject);
    });
    expect(r).toMatch(/^HTTP\/1\.1 401 /);
  });

  it('a body that stops coming is cut: 408 and the connection closed', async () => {
    const r = await raw(
      `POST /api/v1/releases/rel-slow/gate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 1000\r\n\r\n`,
      '{"spec":',
    );
    expect(r.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.closedAfterMs).toBeLessThan(3000);
  });

  it('headers that stop coming are cut', async () => {
    const r = await raw('GET /api/v1/jobs/x HTTP/1.1\r\nHost: x\r\n');
    expect(r.closedAfterMs).toBeLessThan(4000);
    expect(r.text === '' || /^HTTP\/1\.1 408 /.test(r.text)).toBe(true);
  });

  it('a declared body over the limit is 413 before reading it; an oversized header block is 431', async () => {
    const r = await raw(
      `POST /api/v1/releases/rel-big/gate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 10000000\r\n\r\n`,
    );
    expect(r.text).toMatch(/^HTTP\/1\.1 413 /);
    expect((await fetch(`${svc.url}/healthz`, { headers: { 'x-big': 'y'.repeat(20_000) } })).status).toBe(
      431,
    );
  });
});

describe('operations: job list, metrics, request ids, JSON logs', () => {
  it("GET /api/v1/jobs?release= lists the release's jobs, newest first", async () => {
    const first = (await (
      await post('/api/v1/releases/rel-list/gate', { spec: specFor('rel-list') })
    ).json()) as { id: string };
    await waitFor('first job done', async () => (await svc.jobs.get(first.id))?.status === 'SUCCEEDED');
    const second = (await (
      await post('/api/v1/releases/rel-list/gate', { spec: specFor('rel-list') })
    ).json()) as { id: string };
    await svc.jobs.whenIdle();
    const r = (await (
      await fetch(`${svc.url}/api/v1/jobs?release=rel-list`, { headers: bearer })
    ).json()) as { jobs: Array<{ id: string; status: string }> };
    expect(r.jobs.map((j) => j.id)).toEqual([second.id, first.id]);
    expect((await fetch(`${svc.url}/api/v1/jobs?release=rel-list`)).status).toBe(401);
  });

  it('/metrics: jobs by action and status, durations, HTTP requests by route and status', async () => {
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    expect(text).toMatch(/clover_cd_jobs_finished_total\{action="gate",status="SUCCEEDED"\} [1-9]/);
    expect(text).toMatch(/clover_cd_job_duration_seconds_count\{action="gate",status="SUCCEEDED"\} [1-9]/);
    expect(text).toMatch(
      /clover_cd_http_requests_total\{method="POST",route="\/api\/v1\/releases\/\{release\}\/\{action\}",status="400"\} [1-9]/,
    );
    expect(text).toContain('clover_cd_redis_errors_total');
    expect(text).not.toContain('rel-list'); // release names are not labels
  });

  it('x-request-id is echoed (or generated) and every log line is one JSON object carrying it', async () => {
    const r = await fetch(`${svc.url}/api/v1/jobs/nope`, {
      headers: { ...bearer, 'x-request-id': 'req-42' },
    });
    expect(r.headers.get('x-request-id')).toBe('req-42');
    expect((await fetch(`${svc.url}/healthz`)).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    await waitFor('the request logged', async () => logs.some((l) => l.includes('"req-42"')));
    const entries = logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(entries.find((e) => e.requestId === 'req-42')).toMatchObject({
      level: 'info',
      msg: 'request',
      route: '/api/v1/jobs/{id}',
      status: 404,
    });
    expect(entries.every((e) => typeof e.time === 'string' && typeof e.msg === 'string')).toBe(true);
  });
});
