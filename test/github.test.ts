import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGithubClient } from '../src/services/github.js';
import { CloverError } from '../src/util/errors.js';
import { runCli } from './helpers/cli.js';

/**
 * A fake of the GitHub REST API answering as GitHub documents: 201 on create, 422 for an unknown SHA or a
 * bad state, 401 for bad credentials, 404 for a repository the token cannot see.
 */
const TOKEN = 'ghp_fakeTokenValue0123456789abcdef';
const SHA = 'a'.repeat(40);
const requests: Array<{ method: string; url: string; auth?: string; body: any }> = [];
let api: Server;
let apiUrl: string;
const deployments = new Map<number, any>();

function fakeGithub(): Server {
  let nextId = 100;
  return createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = raw ? JSON.parse(raw) : {};
      requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      const send = (status: number, data: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(data));
      };
      if (req.headers.authorization !== `token ${TOKEN}`)
        return send(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      const m = /^\/repos\/([^/]+)\/([^/]+)\/(.*)$/.exec(req.url!);
      if (!m || `${m[1]}/${m[2]}` !== 'opnfv/clover')
        return send(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
      const rest = m[3];
      let s: RegExpExecArray | null;
      if ((s = /^statuses\/([0-9a-f]+)$/.exec(rest)) && req.method === 'POST') {
        if (s[1] !== SHA)
          return send(422, {
            message: `No commit found for SHA: ${s[1]}`,
            documentation_url: 'https://docs.github.com/rest',
          });
        if (!['error', 'failure', 'pending', 'success'].includes(body.state))
          return send(422, {
            message: 'Validation Failed',
            errors: [{ resource: 'Status', field: 'state', code: 'custom' }],
          });
        return send(201, {
          id: nextId++,
          url: `${apiUrl}/repos/opnfv/clover/statuses/${s[1]}`,
          state: body.state,
          context: body.context,
          description: body.description,
          target_url: body.target_url,
        });
      }
      if (rest === 'check-runs' && req.method === 'POST') {
        if (body.head_sha !== SHA)
          return send(422, { message: 'No commit found for SHA', documentation_url: '' });
        const id = nextId++;
        return send(201, {
          id,
          url: `${apiUrl}/repos/opnfv/clover/check-runs/${id}`,
          html_url: `https://github.com/opnfv/clover/runs/${id}`,
          ...body,
        });
      }
      if (rest === 'deployments' && req.method === 'POST') {
        if (body.ref !== SHA)
          return send(422, { message: 'No ref found for: ' + body.ref, documentation_url: '' });
        const id = nextId++;
        deployments.set(id, body);
        return send(201, {
          id,
          url: `${apiUrl}/repos/opnfv/clover/deployments/${id}`,
          ref: body.ref,
          environment: body.environment,
        });
      }
      if ((s = /^deployments\/(\d+)\/statuses$/.exec(rest)) && req.method === 'POST') {
        if (!deployments.has(Number(s[1]))) return send(404, { message: 'Not Found', documentation_url: '' });
        return send(201, {
          id: nextId++,
          url: `${apiUrl}/repos/opnfv/clover/deployments/${s[1]}/statuses/1`,
          state: body.state,
          description: body.description,
        });
      }
      send(404, { message: 'Not Found' });
    });
  });
}

beforeAll(async () => {
  api = fakeGithub();
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => api.close(() => r())));

const client = (over: Partial<{ repository: string; token: string }> = {}) =>
  createGithubClient({ repository: 'opnfv/clover', token: TOKEN, apiUrl, ...over });
const failure = async (p: Promise<unknown>) => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CloverError);
  return err as CloverError;
};

describe('GitHub adapter', () => {
  it('posts a commit status (201), clipped to 140 characters, with the link', async () => {
    const r = await client().setCommitStatus(SHA, {
      state: 'failure',
      context: 'clover-cd/gate',
      description: 'x'.repeat(300),
      targetUrl: 'https://jenkins/job/1',
    });
    expect(r.id).toBeGreaterThan(0);
    const sent = requests.at(-1)!;
    expect(sent).toMatchObject({
      method: 'POST',
      url: `/repos/opnfv/clover/statuses/${SHA}`,
      body: { state: 'failure', context: 'clover-cd/gate', target_url: 'https://jenkins/job/1' },
    });
    expect(sent.body.description).toHaveLength(140);
  });

  it('creates a completed check run, a deployment and its status', async () => {
    const check = await client().createCheckRun(SHA, {
      name: 'clover-cd/gate',
      conclusion: 'success',
      title: 'PASS',
      summary: 'PASS: 6 pass',
    });
    expect(check.url).toMatch(/^https:\/\/github.com\/opnfv\/clover\/runs\//);
    expect(requests.at(-1)!.body).toMatchObject({
      status: 'completed',
      conclusion: 'success',
      output: { title: 'PASS', summary: 'PASS: 6 pass' },
    });
    const dep = await client().createDeployment(SHA, { environment: 'production', description: 'promote' });
    expect(requests.at(-1)!.body).toMatchObject({
      ref: SHA,
      environment: 'production',
      auto_merge: false,
      required_contexts: [],
    });
    await client().createDeploymentStatus(dep.id, { state: 'success', description: 'promoted' });
    expect(requests.at(-1)!.url).toBe(`/repos/opnfv/clover/deployments/${dep.id}/statuses`);
  });

  it("422 is invalid input (exit 2) with GitHub's message", async () => {
    const e = await failure(
      client().setCommitStatus('b'.repeat(40), { state: 'success', context: 'c', description: 'd' }),
    );
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('No commit found for SHA');
  });

  it('401 and 404 are infrastructure errors (exit 4) that say what to check and never show the token', async () => {
    const bad = await failure(
      client({ token: 'ghp_wrongTokenValue999999' }).setCommitStatus(SHA, {
        state: 'success',
        context: 'c',
        description: 'd',
      }),
    );
    expect(bad.exitCode).toBe(4);
    expect(bad.message).toMatch(/401 Bad credentials[^]*check: that the token/);
    const missing = await failure(
      client({ repository: 'opnfv/nope' }).setCommitStatus(SHA, {
        state: 'success',
        context: 'c',
        description: 'd',
      }),
    );
    expect(missing.exitCode).toBe(4);
    expect(missing.message).toContain('404');
    expect(`${bad.message}${missing.message}`).not.toContain('ghp_');
    const gone = await failure(
      client().createDeploymentStatus(99999, { state: 'success', description: 'x' }),
    );
    expect(gone.exitCode).toBe(4);
  });

  it('rejects a repository that is not owner/name', () => {
    expect(() => client({ repository: 'clover' })).toThrow(/owner\/name/);
  });
});

describe('clover-cd notify github', () => {
  it('posts the bundle verdict as status + check run and records a rollback deployment; the token is never printed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'notify-'));
    const bundle = join(dir, 'bundle.json');
    writeFileSync(
      bundle,
      JSON.stringify({
        release: 'http-lb-canary',
        verdict: {
          outcome: 'fail',
          summary: 'FAIL: errorRate 29% > 1%',
          results: [
            {
              rule: 'errorRate (max 1%)',
              outcome: 'fail',
              observed: '29%',
              expected: '<= 1%',
              source: 'scrape',
              reason: 'error rate above 1%',
            },
          ],
        },
      }),
    );
    const before = requests.length;
    const r = await runCli(
      [
        'notify',
        'github',
        '--repo',
        'opnfv/clover',
        '--sha',
        SHA,
        '--bundle',
        bundle,
        '--check',
        '--deployment',
        'rollback',
        '--api-url',
        apiUrl,
        '--target-url',
        'https://jenkins/job/7',
        '-o',
        'json',
      ],
      {
        env: { GITHUB_TOKEN: TOKEN },
        timeoutMs: 90_000,
      },
    );
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      outcome: 'fail',
      status: { state: 'failure' },
      check: { conclusion: 'failure' },
      deployment: { state: 'failure', environment: 'production' },
    });
    const sent = requests.slice(before);
    expect(sent.map((q) => q.url.replace(/\d+/g, 'N').replace(SHA, 'SHA'))).toEqual([
      '/repos/opnfv/clover/statuses/SHA',
      '/repos/opnfv/clover/check-runs',
      '/repos/opnfv/clover/deployments',
      '/repos/opnfv/clover/deployments/N/statuses',
    ]);
    expect(sent[1].body.output.text).toContain('| errorRate (max 1%) | fail | 29% |');
    expect(sent[3].body).toMatchObject({
      state: 'failure',
      description: expect.stringContaining('rolled back'),
      log_url: 'https://jenkins/job/7',
    });
    expect(r.stdout + r.stderr).not.toContain(TOKEN);

    const denied = await runCli(
      ['notify', 'github', '--repo', 'opnfv/clover', '--sha', SHA, '--outcome', 'pass', '--api-url', apiUrl],
      { env: { GITHUB_TOKEN: 'ghp_revokedToken000000000' }, timeoutMs: 90_000 },
    );
    expect(denied.code).toBe(4);
    expect(denied.stderr).toContain('401');
    expect(denied.stderr).not.toContain('ghp_revokedToken000000000');
  });
});
