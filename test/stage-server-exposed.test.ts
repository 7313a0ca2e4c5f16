import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import type { ReleaseSpec } from '../src/spec/types.js';
import { clearSecrets, redact, redactDeep, registerSecret } from '../src/util/redact.js';
import { runGate } from '../src/validators/index.js';
import { BIN, REPO, runCli } from './helpers/cli.js';
import { freePort, waitFor } from './helpers/ports.js';
import { startRedis, type RedisFixture } from './helpers/redis.js';
import { ISTIO_TELEMETRY } from '../src/metrics/index.js';

/**
 * `clover-cd serve` as a separate process, as it runs in a pod: unauthenticated 1 MiB bodies cost it no
 * memory (RSS measured), and a password in any URL it is given (Redis, the cluster, a spec's Prometheus)
 * never appears in any output: stdout, stderr (JSON logs, banner), HTTP answers, evidence bundles, JUnit,
 * Markdown, property files.
 */
const MARKER = 'pw-MARKER-7f3e9c21';
const TOKEN = 'exposed-token-0d4c7a9e51';
const dir = mkdtempSync(join(tmpdir(), 'exposed-'));
const base = yaml.load(readFileSync('examples/sdc-canary.yaml', 'utf8')) as ReleaseSpec;

let redis: RedisFixture;
let child: ChildProcessWithoutNullStreams;
let url = '';
let stdout = '';
let stderr = '';
let deadPort = 0;

beforeAll(async () => {
  redis = await startRedis({ password: MARKER });
  deadPort = await freePort();
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    yaml.dump({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'c',
          cluster: {
            server: `https://kube:${MARKER}@127.0.0.1:${deadPort}`,
            'insecure-skip-tls-verify': true,
          },
        },
      ],
      users: [{ name: 'u', user: { token: `kube-token-${MARKER}` } }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'ctx',
    }),
  );
  mkdirSync(join(dir, 'evidence'));
  const port = await freePort();
  child = spawn(
    process.execPath,
    [
      BIN,
      'serve',
      '--verbose',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--redis',
      redis.url,
      '--kubeconfig',
      kubeconfig,
      '--evidence-dir',
      join(dir, 'evidence'),
      '--lease',
      '2s',
    ],
    { cwd: REPO, env: { ...process.env, NODE_OPTIONS: '', CLOVER_CD_TOKEN: TOKEN } },
  );
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  url = `http://127.0.0.1:${port}`;
  await waitFor('serve answering /healthz', async () => (await fetch(`${url}/healthz`)).ok, 60_000, 100);
}, 90_000);
afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Where `text` shows the marker (with some context), or undefined: a failure names the leak. */
const leak = (text: string) =>
  text.includes(MARKER)
    ? text.slice(Math.max(0, text.indexOf(MARKER) - 200), text.indexOf(MARKER) + 40)
    : undefined;

const rssBytes = () =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) * 1024;

/** `n` unauthenticated POSTs of a 1 MiB body, `parallel` at a time on keep-alive connections; their statuses. */
async function unauthenticatedFlood(n: number, parallel: number): Promise<Array<number | string>> {
  const body = Buffer.alloc(1024 * 1024, 'a');
  const agent = new Agent({ keepAlive: true, maxSockets: parallel });
  const one = () =>
    new Promise<number | string>((resolve) => {
      const req = request(
        `${url}/api/v1/releases/rel-flood/gate`,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      // The server answers before the body is sent and closes the connection: writing the rest may then fail
      // (EPIPE / ECONNRESET) after the answer arrived. Only an error instead of an answer counts.
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      req.end(body);
    });
  const statuses: Array<number | string> = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        next++;
        statuses.push(await one());
      }
    }),
  );
  agent.destroy();
  return statuses;
}

describe('serve in its own process', () => {
  it('1,000 unauthenticated 1 MiB bodies → 401 each, server RSS growth < 20 MB', async () => {
    // RSS of a ~300 MB process swings by tens of MB with GC alone, so peaks are compared: the peak while a
    // first 1,000 bodies arrive (code compiled, heap at its working size) against the peak during the next
    // 1,000. A server that kept (or buffered faster than it freed) bodies would grow by ~1 MiB per body.
    const peakDuring = async <T>(work: Promise<T>): Promise<[T, number]> => {
      let peak = rssBytes();
      const sampler = setInterval(() => (peak = Math.max(peak, rssBytes())), 20);
      const r = await work.finally(() => clearInterval(sampler));
      return [r, Math.max(peak, rssBytes())];
    };
    const [, before] = await peakDuring(unauthenticatedFlood(1000, 8));
    const [statuses, after] = await peakDuring(unauthenticatedFlood(1000, 8));
    const counts = statuses.reduce<Record<string, number>>((c, s) => ({ ...c, [s]: (c[s] ?? 0) + 1 }), {});
    expect(counts).toEqual({ 401: 1000 });
    const growthMb = (after - before) / 1024 / 1024;
    process.stdout.write(
      `serve RSS: ${(before / 1048576).toFixed(1)} MB peak during a first 1,000 x 1 MiB unauthenticated bodies, ${(after / 1048576).toFixed(1)} MB peak during the next 1,000 (growth ${growthMb.toFixed(1)} MB)\n`,
    );
    expect(growthMb).toBeLessThan(20);
  }, 120_000);

  it('a password in any URL never appears in any output; SIGTERM stops it cleanly', async () => {
    const headers = { Authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const spec = {
      ...base,
      metadata: { name: 'rel-marker' },
      load: undefined,
      gate: {
        ...base.gate,
        metrics: {
          source: 'prometheus',
          url: `http://prom:${MARKER}@127.0.0.1:${deadPort}`,
          scrapeInterval: '1s',
        },
      },
    };
    const answers: string[] = [];
    const created = await fetch(`${url}/api/v1/releases/rel-marker/gate`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ spec, window: '1s' }),
    });
    answers.push(await created.clone().text());
    expect({ status: created.status, body: answers[0] }).toMatchObject({ status: 202 });
    const { statusUrl } = (await created.json()) as { statusUrl: string };
    let final = '';
    await waitFor(
      'the gate job ends',
      async () => !(final = await (await fetch(statusUrl, { headers })).text()).includes('"RUNNING"'),
      60_000,
      100,
    );
    answers.push(final);
    answers.push(await (await fetch(`${url}/api/v1/jobs?release=rel-marker`, { headers })).text());
    // A traffic job goes to the cluster, whose URL carries the password: its error is redacted too.
    const traffic = await fetch(`${url}/api/v1/releases/rel-marker/traffic`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ spec, weight: 10 }),
    });
    const trafficUrl = ((await traffic.json()) as { statusUrl: string }).statusUrl;
    await waitFor(
      'the traffic job ends',
      async () => !(final = await (await fetch(trafficUrl, { headers })).text()).includes('"RUNNING"'),
      60_000,
      100,
    );
    answers.push(final, await (await fetch(`${url}/metrics`)).text());

    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) =>
      child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (c) => resolve(c)),
    );
    expect(code).toBe(0);
    const evidence = readdirSync(join(dir, 'evidence')).map((f) =>
      readFileSync(join(dir, 'evidence', f), 'utf8'),
    );
    const outputs = { stdout, stderr, answers: answers.join('\n'), evidence: evidence.join('\n') };
    for (const [name, text] of Object.entries(outputs)) expect({ name, leak: leak(text) }).toEqual({ name });
    expect(stdout).toMatch(/redis:\/\/:\*\*\*@127\.0\.0\.1/); // the banner still says where jobs are kept
    expect(stderr).toMatch(/SIGTERM: no new requests; handing \d+ running job\(s\) over/);
    const lines = stderr.split('\n').filter((l) => l.startsWith('{'));
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
  }, 120_000);
});

describe('report writers', () => {
  it('evidence bundle, JUnit, Markdown, property file and stdout/stderr of a replay carry no URL password', async () => {
    const out = join(dir, 'reports');
    const spec = {
      ...base,
      load: undefined,
      gate: {
        ...base.gate,
        metrics: {
          source: 'prometheus',
          url: `http://prom:${MARKER}@127.0.0.1:${deadPort}`,
          scrapeInterval: '1s',
        },
      },
    } as ReleaseSpec;
    const start = Date.now() - 60_000;
    const run = await runGate(spec, {
      telemetry: ISTIO_TELEMETRY,
      window: { start, end: start + 5000 },
      endpoints: {},
      candidateWeight: 10,
      evidenceDir: out,
    });
    expect(run.verdict.outcome).toBe('error'); // the Prometheus is down: its URL is in the messages
    const files = {
      junit: join(out, 'r.xml'),
      markdown: join(out, 'r.md'),
      properties: join(out, 'r.properties'),
    };
    const r = await runCli([
      'gate',
      '--replay',
      run.bundlePath,
      '--junit',
      files.junit,
      '--markdown',
      files.markdown,
      '--properties',
      files.properties,
    ]);
    expect(r.code).toBe(4);
    const outputs: Record<string, string> = {
      bundle: readFileSync(run.bundlePath, 'utf8'),
      stdout: r.stdout,
      stderr: r.stderr,
    };
    for (const [k, f] of Object.entries(files)) outputs[k] = readFileSync(f, 'utf8');
    expect(outputs.junit).toContain('prom:***@');
    for (const [name, text] of Object.entries(outputs)) expect({ name, leak: leak(text) }).toEqual({ name });
  });
});

describe('redact', () => {
  afterAll(() => clearSecrets());

  it('masks userinfo in any URL, secret key-value pairs and registered values, and keeps sentences readable', () => {
    registerSecret('set'); // too short to register
    registerSecret('abcd'); // short: masked only as a word of its own
    registerSecret('a-long-secret-value');
    const cases: Array<[string, string]> = [
      ['no GitHub token: set GITHUB_TOKEN', 'no GitHub token: set GITHUB_TOKEN'],
      [
        'redis://:pw@r:6379/0 rediss://u:pw@r http://u:pw@h/ https://ghp_x@github.com/o',
        'redis://:***@r:6379/0 rediss://u:***@r http://u:***@h/ https://***@github.com/o',
      ],
      ['mail me at user@example.com', 'mail me at user@example.com'],
      ['Authorization: Bearer abc.def', 'Authorization: Bearer ***'],
      [
        'GITHUB_TOKEN=ghp_1 --token=x ?access_token=y&z=1',
        'GITHUB_TOKEN=*** --token=*** ?access_token=***&z=1',
      ],
      ['{"password": "hunter2"}', '{"password": "***"}'],
      ['  password: hunter2', '  password: ***'],
      ['abcd, abcdef and xabcd', '***, abcdef and xabcd'],
      ['key a-long-secret-value!', 'key ***!'],
    ];
    for (const [input, expected] of cases) expect(redact(input)).toBe(expected);
    expect(redactDeep({ token: 'plain', url: 'http://u:pw@h', list: ['redis://:pw@r'] })).toEqual({
      token: '***',
      url: 'http://u:***@h',
      list: ['redis://:***@r'],
    });
  });
});
