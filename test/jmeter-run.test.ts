import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { findJMeter, loadPlan, runLoad, type LoadPlan } from '../src/jmeter/index.js';
import { BIN, REPO, runCli } from './helpers/cli.js';
import { startHttpTarget, type HttpTarget } from './helpers/http-target.js';
import { freePort, waitFor } from './helpers/ports.js';

// Real Debian JMeter (through the launcher) and the builtin engine against a local node http server.
const dir = mkdtempSync(join(tmpdir(), 'jmeter-run-test-'));
let target: HttpTarget;
// Clover's sample plan, read unchanged; only its 60 s ramp is shortened so the suite stays fast.
const clover = (): LoadPlan => ({ ...loadPlan(join(REPO, 'examples/jmeter_testplan.yaml')), rampS: 1 });
const reset = () => {
  for (const k of Object.keys(target.byUserAgent)) delete target.byUserAgent[k];
  for (const k of Object.keys(target.byPath)) delete target.byPath[k];
  for (const k of Object.keys(target.byLoadTag)) delete target.byLoadTag[k];
};

beforeAll(async () => {
  target = await startHttpTarget((req) =>
    req.url?.startsWith('/fail') ? { status: 500 } : { body: 'status: ok' },
  );
});
afterAll(async () => {
  await target.stop();
});

describe.each(['jmeter', 'builtin'] as const)('%s engine', (engine) => {
  it("runs Clover's sample plan: exactly 20 samples, url1/url2, the configured User-Agents reach the server", async () => {
    reset();
    const r = await runLoad(clover(), {
      engine,
      target: target.origin,
      resultsFile: join(dir, `${engine}-clover.jtl`),
    });
    expect(r.engine).toBe(engine);
    expect(r.expected).toBe(20);
    expect(r.summary.total.count).toBe(20);
    expect(r.summary.total.errors).toBe(0);
    expect(Object.keys(r.summary.labels)).toEqual(['url1', 'url2']);
    expect(r.summary.labels.url1).toMatchObject({
      count: 10,
      codes: { '200': 10 },
      userAgents: { chrome: 10 },
    });
    expect(r.summary.labels.url2).toMatchObject({ count: 10, userAgents: { safari: 10 } });
    expect(target.byUserAgent).toEqual({ chrome: 10, safari: 10 });
    // Every request carries the run's tag, so each hop's telemetry can tell the load from user traffic.
    expect(target.byLoadTag).toEqual({ [r.runId!]: 20 });
    expect(r.countProblem).toBeUndefined();
    expect(r.endedAt).toBeGreaterThanOrEqual(r.startedAt);
    expect(readFileSync(r.jtlPath, 'utf8').split('\n')[0]).toMatch(/^timeStamp,elapsed,label,responseCode/);
  });

  it('fails samples on assertions and keeps scheme/query and extra headers', async () => {
    reset();
    const plan = loadPlan({
      load_spec: { num_threads: 2, loops: 3, headers: { 'X-Canary': 'insider' } },
      url_list: [
        { name: 'wrong-status', url: 'http://svc/ok?x=1', 'user-agent': 'ua-a', assert: { status: 201 } },
        {
          name: 'missing-text',
          url: 'http://svc/ok',
          'user-agent': 'ua-b',
          assert: { contains: 'not in the body' },
        },
        { name: 'accepted-500', url: 'http://svc/fail', assert: { status: '5xx', contains: 'hello' } },
        {
          name: 'fine',
          url: 'http://svc/ok',
          assert: { status: [200], contains: 'status: ok', max_time: '5s' },
        },
      ],
    });
    const r = await runLoad(plan, {
      engine,
      target: target.origin,
      resultsFile: join(dir, `${engine}-assert.jtl`),
    });
    const l = r.summary.labels;
    expect(r.summary.total.count).toBe(24);
    expect([
      l['wrong-status'].errors,
      l['missing-text'].errors,
      l['accepted-500'].errors,
      l.fine.errors,
    ]).toEqual([6, 6, 0, 0]);
    expect(target.byPath['/ok?x=1']).toBe(6);
  });
});

describe('faults and bad input', () => {
  it('records an unreachable target as failed samples and completes', async () => {
    const port = await freePort();
    const plan: LoadPlan = { ...clover(), rampS: 0, threads: 2 };
    const r = await runLoad(plan, { engine: 'builtin', target: `http://127.0.0.1:${port}` });
    expect(r.summary.total).toMatchObject({ count: 8, errors: 8, errorRate: 1 });
    expect(Object.keys(r.summary.total.codes)[0]).toMatch(/Non HTTP response code/);
  });

  it('JMeter stopped while its JVM starts sends nothing: its shutdown port is not open yet, so it is stopped, not told', async () => {
    reset();
    const stop = new AbortController();
    const r = await runLoad(
      { ...clover(), loops: -1, durationS: 30 },
      { engine: 'jmeter', target: target.origin, signal: stop.signal, onStart: () => stop.abort() },
    );
    expect({ interrupted: r.interrupted, samples: r.summary.total.count }).toEqual({
      interrupted: true,
      samples: 0,
    });
    expect(target.byLoadTag).toEqual({});
  });

  it("HEAP and JVM_ARGS reach JMeter's JVM, as with JMeter's own bin/jmeter script", async () => {
    const jvmLog = join(dir, 'jvm-options.log');
    const saved = { HEAP: process.env.HEAP, JVM_ARGS: process.env.JVM_ARGS };
    Object.assign(process.env, {
      HEAP: '-Xmx192m',
      JVM_ARGS: `-XX:+UseSerialGC -Xlog:gc,gc+init:file=${jvmLog}`,
    });
    try {
      const r = await runLoad(
        { ...clover(), rampS: 0, loops: 1 },
        { engine: 'jmeter', target: target.origin },
      );
      expect(r.summary.total.count).toBe(r.expected);
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
    const log = readFileSync(jvmLog, 'utf8');
    expect(log).toContain('Using Serial');
    expect(log).toContain('Heap Max Capacity: 192M');
  });

  it('never appends to an old results file', async () => {
    const file = join(dir, 'old.jtl');
    writeFileSync(file, 'old\n');
    await expect(
      runLoad(clover(), { engine: 'builtin', target: target.origin, resultsFile: file }),
    ).rejects.toMatchObject({ exitCode: 2 });
    expect(readFileSync(file, 'utf8')).toBe('old\n');
  });

  it('maps a missing JMeter to exit 4 with the install hint', async () => {
    await expect(
      runLoad(clover(), { engine: 'jmeter', jmeterHome: join(dir, 'none'), target: target.origin }),
    ).rejects.toMatchObject({
      exitCode: 4,
      message: expect.stringMatching(/apt-get install -y jmeter/),
    });
  });
});

describe('clover-cd load (CLI)', () => {
  it('run: prints the report, exit 1 naming the tripped criterion; report --junit reads the same JTL', async () => {
    const planFile = join(dir, 'criteria.yaml');
    writeFileSync(
      planFile,
      yaml.dump({
        load_spec: { num_threads: 2, loops: 5, ramp_time: 0 },
        url_list: [
          { name: 'ok', url: 'http://svc/ok', 'user-agent': 'chrome' },
          { name: 'bad', url: 'http://svc/fail', 'user-agent': 'safari' },
        ],
        criteria: ['error-rate > 1%', 'count(ok) != expected', 'p99 > 10s'],
      }),
    );
    const results = join(dir, 'cli.jtl');
    const r = await runCli([
      'load',
      'run',
      planFile,
      '--engine',
      'jmeter',
      '--target',
      target.origin,
      '--results',
      results,
      '-o',
      'json',
    ]);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.total).toBeUndefined();
    expect(out.summary.total).toMatchObject({ count: 20, errors: 10 });
    expect(out.expected).toBe(20);
    expect(out.criteria.map((c: { tripped: boolean }) => c.tripped)).toEqual([true, false, false]);
    expect(out.criteria[0].observed).toBe('50%');

    const junit = join(dir, 'load.xml');
    const rep = await runCli(['load', 'report', results, '--plan', planFile, '--junit', junit]);
    expect(rep.code).toBe(1);
    expect(rep.stdout).toMatch(/FAIL\s+error-rate > 1%/);
    expect(readFileSync(junit, 'utf8')).toMatch(/<failure message="observed 50%/);
  });

  it.each(['jmeter', 'builtin'])(
    'run --stream-results --run-id (%s): every JTL line on stdout as jtl|<line>, the requests tagged with the id',
    async (engine) => {
      reset();
      const results = join(dir, `streamed-${engine}.jtl`);
      // Clover's sample plan without its 60 s ramp.
      const doc = yaml.load(readFileSync(join(REPO, 'examples/jmeter_testplan.yaml'), 'utf8')) as {
        load_spec: Record<string, unknown>;
      };
      const planFile = join(dir, `streamed-${engine}.yaml`);
      writeFileSync(planFile, yaml.dump({ ...doc, load_spec: { ...doc.load_spec, ramp_time: 0 } }));
      const r = await runCli([
        ...['load', 'run', planFile, '--engine', engine],
        ...['--target', target.origin, '--results', results, '--stream-results', '--run-id', `run-${engine}`],
      ]);
      expect(r.code).toBe(0);
      const streamed = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('jtl|'))
        .map((l) => l.slice(4));
      expect(streamed).toEqual(readFileSync(results, 'utf8').trim().split('\n'));
      expect(streamed.length).toBe(21); // the header and Clover's 20 samples
      expect(target.byLoadTag).toEqual({ [`run-${engine}`]: 20 });
    },
    60_000,
  );

  it('run --run-id refuses an id the header cannot carry (exit 2, before any load)', async () => {
    const r = await runCli(['load', 'run', 'examples/jmeter_testplan.yaml', '--run-id', 'a b']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({
      code: 2,
      stderr: expect.stringContaining('--run-id must be 1 to 64 letters, digits'),
    });
  });

  it('render -o writes a .jmx file', async () => {
    const out = join(dir, 'plan.jmx');
    const r = await runCli(['load', 'render', 'examples/jmeter_testplan.yaml', '-o', out]);
    expect(r.code).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain('<HTTPSamplerProxy');
  });
});

describe('distributed JMeter', () => {
  const servers: ChildProcess[] = [];
  afterAll(async () => {
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) =>
            s.exitCode !== null ? resolve() : (s.once('exit', () => resolve()), s.kill('SIGKILL')),
          ),
      ),
    );
  });

  it('two loopback engines of `clover-cd load server` yield 2 x the samples, and stop on SIGTERM with 130', async () => {
    expect(findJMeter()).toBeDefined();
    const remote: string[] = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const local = await freePort();
      // The command `load render --kubernetes` gives each engine pod; jmeter-server.log goes to its own folder.
      const cwd = mkdtempSync(join(dir, `engine-${i}-`));
      const proc = spawn(
        process.execPath,
        [BIN, 'load', 'server', '--port', String(port), '--local-port', String(local)],
        { cwd, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'ignore'] },
      );
      servers.push(proc);
      // The RMI registry port opens before the engine is bound in it; jmeter-server says when it is.
      let out = '';
      proc.stdout!.on('data', (d) => (out += d));
      await waitFor(
        `jmeter-server on 127.0.0.1:${port} to bind its engine`,
        async () => /Created remote object/.test(out),
        60_000,
        100,
      );
      remote.push(`127.0.0.1:${port}`);
    }
    reset();
    const r = await runLoad(clover(), {
      remote,
      target: target.origin,
      resultsFile: join(dir, 'distributed.jtl'),
    });
    expect(r.engine).toBe('jmeter');
    expect(r.expected).toBe(40);
    expect(r.summary.total.count).toBe(40);
    expect(r.summary.labels.url1.userAgents).toEqual({ chrome: 20 });
    expect(target.byUserAgent).toEqual({ chrome: 20, safari: 20 });
    // The engines send the plan's HeaderManager too: every request carries the run id.
    expect(target.byLoadTag).toEqual({ [r.runId!]: 40 });
    expect(r.engineHosts).toEqual(remote);
    expect(existsSync(r.jtlPath)).toBe(true);
    const exits = servers.map(
      (s) => new Promise<number | null>((resolve) => s.once('exit', (code) => resolve(code))),
    );
    servers.forEach((s) => s.kill('SIGTERM'));
    expect(await Promise.all(exits)).toEqual([130, 130]);
  }, 120_000);

  it('load server refuses a bad port or host name with exit 2, before starting JMeter', async () => {
    const port = await runCli(['load', 'server', '--port', '70000']);
    expect({ code: port.code, stderr: port.stderr }).toEqual({
      code: 2,
      stderr: expect.stringContaining('--port must be a whole number from 1 to 65535, got 70000'),
    });
    const host = await runCli(['load', 'server', '--hostname', 'a b']);
    expect({ code: host.code, stderr: host.stderr }).toEqual({
      code: 2,
      stderr: expect.stringContaining('--hostname must be a host name or address, got "a b"'),
    });
    expect((await runCli(['load', 'server', '--help'])).stdout).toMatch(
      /Examples:\n\s+clover-cd load server --port 1099/,
    );
  });
});
