/**
 * The "Done when", end to end as root: the sandbox in --netns mode (a namespace and host veth per
 * workload), `clover-cd clovisor run --sandbox` tracing its workloads (both tiers), real load through the ingress
 * from the load module's builtin engine, and the gate (runGate with an `l4` rule, L4 evidence fetched from the
 * tracer's HTTP endpoint). A candidate whose fault knob resets connections, behind a route that retries resets as
 * Envoy does, fails the gate on the l4 rule while its L7 error rate passes; a healthy candidate passes.
 * Then a crashed tracer + `clovisor cleanup` + `sandbox down` leave nothing behind.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FILTER_PRIO, sandboxTargets } from '../src/clovisor/index.js';
import { loadPlan, runLoad } from '../src/jmeter/index.js';
import { connectSandbox } from '../src/sandbox/index.js';
import { scrapeTargets } from '../src/services/scrape.js';
import type { ReleaseSpec } from '../src/spec/types.js';
import { runGate, verdictExitCode, type GateRun } from '../src/validators/index.js';
import { ebpfUnavailableReason } from './clovisor-lab.js';
import { BIN, REPO, runCli } from './helpers/cli.js';
import { waitFor } from './helpers/ports.js';
import { ISTIO_TELEMETRY } from '../src/metrics/index.js';

const reason = ebpfUnavailableReason();
if (reason) process.stdout.write(`SKIPPED clovisor gate suite: ${reason}\n`);
const d = reason ? describe.skip : describe;

const sh = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const dir = mkdtempSync(join(tmpdir(), 'clovisor-gate-'));
const sandboxDir = join(dir, 'sandbox');
const clovisorState = join(dir, 'clovisor');
const pinRoot = `/sys/fs/bpf/clover-cd-gate-${process.pid}`;

const plan = loadPlan({
  load_spec: { num_threads: 4, loops: 100, ramp_time: 0 },
  url_list: [
    { name: 'root', url: 'http://proxy-access-control.default:9180/', method: 'GET', 'user-agent': 'chrome' },
  ],
});

const VS = {
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'VirtualService',
  namespace: 'default',
  name: 'http-lb',
};

let sandbox: Awaited<ReturnType<typeof connectSandbox>>;
let tracer: ChildProcess | undefined;
let clovisorUrl: string;
let sid = '';
let hostVeths: string[] = [];

function spec(): ReleaseSpec {
  return {
    apiVersion: 'clover-cd/v1',
    kind: 'Release',
    metadata: { name: 'http-lb-l4' },
    application: 'sdc',
    service: {
      name: 'http-lb',
      namespace: 'default',
      port: 9180,
      versionLabel: 'version',
      stable: 'v1',
      candidate: 'v2',
    },
    strategy: { canary: { steps: [50], window: '10s' } },
    gate: {
      minSamples: 30,
      metrics: { source: 'scrape', targets: [sandbox.urls.metrics] },
      // A limit a window of ~200 candidate requests with ~3% resets passes with room under the gate's budget.
      rules: [{ errorRate: { max: '20%' } }, { l4: { resetRate: '5%', required: true } }],
    },
  };
}

async function loadAndGate(): Promise<GateRun & { loadErrors: number }> {
  const scrapeBaseline = await scrapeTargets([sandbox.urls.metrics]);
  const start = Date.now();
  const load = await runLoad(plan, { engine: 'builtin', target: sandbox.urls.ingress });
  const end = Date.now();
  const run = await runGate(spec(), {
    telemetry: ISTIO_TELEMETRY,
    window: { start, end },
    endpoints: {},
    load,
    candidateWeight: 50,
    evidenceDir: dir,
    metricsWindow: { start: scrapeBaseline.at, baseline: scrapeBaseline },
    clovisorUrl,
  });
  return { ...run, loadErrors: load.summary.total.errors };
}

const byRule = (run: GateRun) =>
  Object.fromEntries(run.verdict.results.map((r) => [r.rule.split(' ')[0], r]));

d('clovisor evidence in the gate, on the --netns sandbox', () => {
  beforeAll(async () => {
    const up = await runCli(
      ['sandbox', 'up', '--detach', '--netns', '--state-dir', sandboxDir, '-o', 'json'],
      { timeoutMs: 60_000 },
    );
    if (up.code !== 0) throw new Error(`sandbox up failed: ${up.stderr}`);
    sandbox = await connectSandbox(sandboxDir);
    const targets = sandboxTargets(sandboxDir);
    hostVeths = targets.map((t) => t.hostVeth!).filter(Boolean);
    sid = /ccd-(\w{4})-/.exec(targets[0].netns)![1];
    // The sandbox makes no clsact qdisc of its own: any on these veths after `run` is clovisor's.
    for (const v of hostVeths) expect(sh('tc', ['qdisc', 'show', 'dev', v])).not.toContain('clsact');

    // 50/50 between v1 and v2, retrying resets as an Envoy route with `retries` does.
    const vs = (await sandbox.platform.get(VS))!;
    const route = (vs.spec as { http: Array<{ route: unknown[] }> }).http[0].route as Array<{
      destination: unknown;
      weight: number;
    }>;
    await sandbox.platform.patch(
      VS,
      {
        spec: {
          http: [
            {
              name: 'primary',
              route: route.map((r) => ({ ...r, weight: 50 })),
              retries: { attempts: 3, retryOn: 'reset,connect-failure' },
            },
          ],
        },
      },
      { resourceVersion: vs.metadata.resourceVersion },
    );

    tracer = spawn(
      process.execPath,
      [
        BIN,
        'clovisor',
        'run',
        '--sandbox',
        sandboxDir,
        '--packet-tier',
        // Port 0: the tracer binds a free port and says which (a port picked here first could be taken by
        // another suite's server before the tracer binds it, and answered by that server).
        '--listen',
        '127.0.0.1:0',
        '--pin-root',
        pinRoot,
        '--state-dir',
        clovisorState,
      ],
      {
        cwd: REPO,
        env: { ...process.env, NODE_OPTIONS: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    tracer.stderr!.on('data', (c) => (stderr += c));
    await waitFor(
      'clovisor run to serve its status',
      async () => {
        if (tracer!.exitCode !== null) throw new Error(`clovisor run exited ${tracer!.exitCode}: ${stderr}`);
        const bound = /clovisor: (http:\/\/[^/\s]+)\/metrics/.exec(stderr)?.[1];
        if (!bound) return false;
        clovisorUrl = bound;
        const r = await fetch(`${clovisorUrl}/api/v1/status`).catch(() => undefined);
        return r?.status === 200;
      },
      30_000,
      100,
    );
  }, 90_000);

  afterAll(async () => {
    if (tracer && tracer.exitCode === null) tracer.kill('SIGKILL');
    await runCli(['clovisor', 'cleanup', '--pin-root', pinRoot, '--state-dir', clovisorState]);
    await runCli(['sandbox', 'down', '--state-dir', sandboxDir]);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('traces every --netns workload, both tiers', async () => {
    const status = (await (await fetch(`${clovisorUrl}/api/v1/status`)).json()) as {
      reader: string;
      targets: Array<{ workload: string; attached: { socket: boolean; packet: boolean } }>;
    };
    expect(status.reader).toBe('clovisor-events');
    expect(status.targets.map((t) => t.workload).sort()).toEqual([
      'clover-server1',
      'clover-server2',
      'clover-server3',
      'clover-server4',
      'clover-server5',
      'http-lb-v1',
      'http-lb-v2',
      'proxy-access-control',
      'snort-ids',
    ]);
    expect(status.targets.every((t) => t.attached.socket && t.attached.packet)).toBe(true);
    for (const v of hostVeths)
      expect(sh('tc', ['-j', 'filter', 'show', 'dev', v, 'ingress'])).toContain(`"pref":${FILTER_PRIO}`);
  });

  it('a healthy candidate passes the l4 rule (its keep-alive connections are counted while open)', async () => {
    const run = await loadAndGate();
    const r = byRule(run);
    expect(
      run.verdict.results
        .filter((x) => x.outcome !== 'pass')
        .map((x) => `${x.outcome} ${x.rule}: ${x.reason}`),
    ).toEqual([]);
    expect(verdictExitCode(run.verdict)).toBe(0);
    const l4 = run.bundle.evidence.l4!;
    expect(l4.complete).toBe(true);
    expect(l4.versions.v2.connections).toBeGreaterThan(0);
    expect(l4.versions.v2.resetConnections).toBe(0);
    expect(l4.versions.v1.resetConnections).toBe(0);
    expect(r.l4.source).toMatch(/clovisor/);
  }, 60_000);

  it('a candidate whose connections are reset fails the gate on the l4 rule while its L7 error rate passes', async () => {
    await sandbox.setFault('http-lb', 'v2', { resetRate: 0.03 });
    try {
      const run = await loadAndGate();
      const r = byRule(run);
      expect(verdictExitCode(run.verdict)).toBe(1);
      // L7: the route's retries absorb the resets (the client saw no error), and the 503s the destination
      // reported for the reset attempts stay under the errorRate limit.
      expect(run.loadErrors).toBe(0);
      expect(r.errorRate.outcome).toBe('pass');
      const hop = run.bundle.evidence.metrics!.hops['http-lb'].v2;
      expect(hop.errors).toBeGreaterThan(0);
      expect(hop.errors / hop.requests).toBeLessThanOrEqual(0.1);
      // L4: the reason.
      expect(r.l4.outcome).toBe('fail');
      expect(r.l4.reason).toMatch(/reset rate of v2 \d+\.\d+% > 5%/);
      expect(
        run.verdict.results.filter((x) => x.outcome === 'fail').map((x) => x.rule.split(' ')[0]),
      ).toEqual(['l4']);
      const l4 = run.bundle.evidence.l4!;
      // Exact: each reset attempt (one 503 UC at the destination) is two reset connections in v2's namespace —
      // the sidecar's reset reaches the pod's relay connection (one RST received), and the runner passes it on by
      // an abortive close of the caller's connection (one RST sent, after that socket's CLOSE).
      expect(l4.versions.v2.resetsReceived).toBe(hop.errors);
      expect(l4.versions.v2.resetsSent).toBe(hop.errors);
      expect(l4.versions.v2.resetConnections).toBe(2 * hop.errors);
      expect(l4.versions.v1.resetConnections).toBe(0);
    } finally {
      await sandbox.setFault('http-lb', 'v2', null);
    }
  }, 60_000);

  it('after a crashed tracer, `clovisor cleanup` and `sandbox down` leave no filter, qdisc, pinned object or namespace', async () => {
    const progIds = readdirIds();
    expect(progIds.length).toBeGreaterThan(0);
    const readerPids = sh('ps', ['-eo', 'pid,args'])
      .split('\n')
      .filter((l) => l.includes(`${pinRoot}/maps/events`))
      .map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(readerPids).toHaveLength(1);
    const exited = new Promise((r) => tracer!.once('exit', r));
    tracer!.kill('SIGKILL'); // a crashed DaemonSet pod: nothing was undone
    await exited;
    await waitFor(
      'the perf reader to follow its parent',
      async () => !existsSync(`/proc/${readerPids[0]}`),
      5000,
      50,
    );

    const cli = await runCli([
      'clovisor',
      'cleanup',
      '--pin-root',
      pinRoot,
      '--state-dir',
      clovisorState,
      '-o',
      'json',
    ]);
    expect(cli.code).toBe(0);
    const report = JSON.parse(cli.stdout) as { removed: string[]; kept: string[] };
    expect(report.removed).toEqual(
      expect.arrayContaining([
        'link/tp_inet_sock_set_state',
        'maps/conns',
        ...hostVeths.map((v) => `qdisc ${v} clsact`),
      ]),
    );
    expect(report.kept).toEqual([]);
    expect(existsSync(pinRoot)).toBe(false);
    for (const v of hostVeths) {
      for (const dir2 of ['ingress', 'egress'])
        expect(sh('tc', ['-j', 'filter', 'show', 'dev', v, dir2])).not.toContain(`"pref":${FILTER_PRIO}`);
      expect(sh('tc', ['qdisc', 'show', 'dev', v])).not.toContain('clsact');
    }
    // Programs are gone from the kernel once their pins and links are (freed asynchronously: wait, bounded).
    await waitFor('the programs to be freed', async () => readdirIdsLoaded(progIds).length === 0, 5000, 100);

    const down = await runCli(['sandbox', 'down', '--state-dir', sandboxDir]);
    expect(down.code).toBe(0);
    expect(
      sh('ip', ['netns', 'list'])
        .split('\n')
        .filter((l) => l.startsWith(`ccd-${sid}-`)),
    ).toEqual([]);
    expect(
      sh('ip', ['-o', 'link', 'show'])
        .split('\n')
        .filter((l) => l.includes(`ccd-${sid}-`) || l.includes(`ccd-br-${sid}`)),
    ).toEqual([]);
    expect(
      (
        await runCli([
          'clovisor',
          'cleanup',
          '--pin-root',
          pinRoot,
          '--state-dir',
          clovisorState,
          '-o',
          'json',
        ])
      ).stdout,
    ).toContain('"removed": []');
  }, 60_000);
});

/** Ids of clovisor's loaded programs, from its pins. */
function readdirIds(): number[] {
  const state = JSON.parse(readFileSync(join(clovisorState, `${pinRoot.split('/').pop()}.json`), 'utf8')) as {
    links: Array<{ progId: number }>;
  };
  return state.links.map((l) => l.progId);
}

function readdirIdsLoaded(ids: number[]): number[] {
  const loaded = new Set(
    (JSON.parse(sh('bpftool', ['-j', 'prog', 'show'])) as Array<{ id: number }>).map((p) => p.id),
  );
  return ids.filter((id) => loaded.has(id));
}
