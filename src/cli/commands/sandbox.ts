// Over 400 lines: the sandbox verbs (up, status, down, apply, delete, fault), a register function and an action each, with the state-file helpers they share.
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import writeFileAtomic from 'write-file-atomic';
import { MESHES, type Mesh } from '../../contract/index.js';
import * as yaml from 'js-yaml';
import { refOf, type KubeObject } from '../../services/platform.js';
import type { SandboxState } from '../../sandbox/remote.js';
import { removeNamespaces } from '../../sandbox/netns.js';
import { InfrastructureError, InvalidInputError } from '../../util/errors.js';
import { sleep } from '../../util/retry.js';
import { parseDurationMs } from '../../util/units.js';
import { action, globalOptions } from '../context.js';
import { parseUrlFlag } from '../flags.js';
import { note, printResult, table } from '../output.js';

/** The engine behind the verbs, loaded by loadEngine() when one runs: `--help` loads none of it. */
type TSandboxIndex = typeof import('../../sandbox/index.js');
let connectSandbox: TSandboxIndex['connectSandbox'],
  defaultStateDir: TSandboxIndex['defaultStateDir'],
  readState: TSandboxIndex['readState'],
  startSandbox: TSandboxIndex['startSandbox'];
type TSandboxRemote = typeof import('../../sandbox/remote.js');
let adminClient: TSandboxRemote['adminClient'], STATE_FILE: TSandboxRemote['STATE_FILE'];
type TSandboxControl = typeof import('../../sandbox/control.js');
let checkFault: TSandboxControl['checkFault'], sandboxStatus: TSandboxControl['sandboxStatus'];
async function loadEngine(): Promise<void> {
  const [m0, m1, m2] = await Promise.all([
    import('../../sandbox/index.js'),
    import('../../sandbox/remote.js'),
    import('../../sandbox/control.js'),
  ]);
  ({ connectSandbox, defaultStateDir, readState, startSandbox } = m0);
  ({ adminClient, STATE_FILE } = m1);
  ({ checkFault, sandboxStatus } = m2);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Remove what `up` wrote; the state directory too when nothing else is in it. */
function cleanState(dir: string): void {
  rmSync(join(dir, STATE_FILE), { force: true });
  rmSync(join(dir, 'sandbox.log'), { force: true });
  try {
    if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    /* another process wrote into it meanwhile: leave it */
  }
}

async function runningState(dir: string): Promise<SandboxState | undefined> {
  const s = readState(dir);
  if (s && !alive(s.pid)) {
    // a crashed sandbox: its state is stale; remove the namespaces / bridge it recorded too
    if (s.namespaces?.length) await removeNamespaces(s.namespaces);
    cleanState(dir);
    return undefined;
  }
  return s;
}

const urlText = (u: Record<string, string>) =>
  table(
    ['endpoint', 'url'],
    Object.entries(u).map(([k, v]) => [k, v]),
  );

async function upForeground(
  dir: string,
  opts: { netns?: boolean; redis?: string; traceCapacity?: string; mesh?: Mesh },
  format: ReturnType<typeof globalOptions>['output'],
): Promise<number> {
  const sb = await startSandbox({
    stateDir: dir,
    mesh: opts.mesh,
    netns: opts.netns,
    redisUrl: opts.redis,
    traceCapacity: opts.traceCapacity ? Number(opts.traceCapacity) : undefined,
  });
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const stop = () => done();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  sb.core.onShutdown = stop;
  mkdirSync(dir, { recursive: true });
  const state: SandboxState = {
    pid: process.pid,
    urls: sb.urls,
    token: sb.core.adminToken!,
    startedAt: new Date().toISOString(),
    netns: Boolean(opts.netns),
    namespaces: sb.core.namespaces,
    // per workload: name, version, and in --netns mode netns path, host veth, pod IP, port (read by clovisor)
    workloads: sandboxStatus(sb.core).workloads.filter((w) => w.name !== 'istio-ingressgateway'),
  };
  const file = join(dir, STATE_FILE);
  // Whole or not at all: `up --detach` and other commands read it while this process may be writing it.
  writeFileAtomic.sync(file, JSON.stringify(state, null, 2), { mode: 0o600 });
  const { token: _t, ...shown } = state;
  printResult(format, { ...sb.urls, pid: shown.pid }, () =>
    urlText(sb.urls as unknown as Record<string, string>),
  );
  note(
    `sandbox running (pid ${process.pid}); stop it with Ctrl-C or: clover-cd sandbox down${dir === defaultStateDir() ? '' : ` --state-dir ${dir}`}`,
  );
  await finished;
  note('stopping the sandbox…');
  await sb.stop();
  cleanState(dir);
  return 0;
}

async function upDetached(
  dir: string,
  cmd: Command,
  opts: { netns?: boolean; redis?: string; traceCapacity?: string; mesh?: Mesh },
): Promise<SandboxState> {
  mkdirSync(dir, { recursive: true });
  const log = join(dir, 'sandbox.log');
  const fd = openSync(log, 'w');
  const args = [process.argv[1], 'sandbox', 'up', '--state-dir', dir, '--output', 'json'];
  if (opts.netns) args.push('--netns');
  if (opts.redis) args.push('--redis', opts.redis);
  if (opts.traceCapacity) args.push('--trace-capacity', opts.traceCapacity);
  if (opts.mesh) args.push('--mesh', opts.mesh);
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: process.env,
  });
  closeSync(fd);
  child.unref();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const s = readState(dir);
    if (s && s.pid === child.pid) return s;
    if (child.exitCode !== null || !alive(child.pid!)) break;
    await sleep(50);
  }
  const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-8).join('\n') : '';
  if (child.pid && alive(child.pid)) process.kill(child.pid, 'SIGTERM');
  cleanState(dir);
  throw new InfrastructureError(
    'sandbox',
    dir,
    `the detached sandbox did not become ready${tail ? `:\n${tail}` : ''}`,
    'the log above; run `clover-cd sandbox up` in the foreground to see it start',
  );
}

/** The objects of a YAML/JSON file (several documents, `kind: List` expanded); each needs kind and metadata.name. */
function readObjects(file: string): KubeObject[] {
  let docs: KubeObject[];
  try {
    docs = (yaml.loadAll(readFileSync(file, 'utf8')) as KubeObject[]).filter(Boolean);
  } catch (err) {
    throw new InvalidInputError(`${file}: cannot read YAML: ${(err as Error).message}`);
  }
  const items = docs.flatMap((d) =>
    d.kind === 'List' && Array.isArray(d.items) ? (d.items as KubeObject[]) : [d],
  );
  const bad = items.findIndex((o) => typeof o !== 'object' || !o.kind || !o.apiVersion || !o.metadata?.name);
  if (bad >= 0)
    throw new InvalidInputError(`${file}: document ${bad + 1} is not an object`, [
      { file, path: `[${bad}]`, message: 'expected apiVersion, kind and metadata.name' },
    ]);
  return items;
}

const stateOption = (c: Command) =>
  c.option('--state-dir <dir>', 'where the state file lives (default $CLOVER_CD_STATE_DIR or ./.clover-cd)');
const dirOf = (o: { stateDir?: string }) => (o.stateDir ? resolve(o.stateDir) : defaultStateDir());

interface UpFlags {
  detach: boolean;
  netns: boolean;
  redis?: string;
  traceCapacity?: string;
  mesh?: Mesh;
  stateDir?: string;
}

function registerSandboxUp(sandbox: Command): void {
  stateOption(
    sandbox
      .command('up')
      .description(
        'start the sandbox: every SDC workload with its sidecar, the ingress, /metrics, the Jaeger API, gRPC control',
      )
      .option('--detach', 'run in the background and return once it is ready', false)
      .option(
        '--netns',
        'put each workload in its own network namespace joined by veth pairs (root only)',
        false,
      )
      .option(
        '--redis <url>',
        'Redis for snort-ids alerts (keys snort_events, snort_event:<n>), e.g. redis://127.0.0.1:6379',
        (v: string) => parseUrlFlag('--redis', v, ['redis:', 'rediss:']),
      )
      .option('--trace-capacity <spans>', 'spans the trace store keeps (oldest dropped first)', '200000')
      .addOption(
        new Option(
          '--mesh <api>',
          "the API http-lb's routes are written in: an Istio VirtualService, or a Gateway API HTTPRoute (service.mesh of the specs you release on it)",
        )
          .choices([...MESHES])
          .default('istio'),
      ),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  clover-cd sandbox up                      foreground; Ctrl-C stops it\n  clover-cd sandbox up --detach --redis redis://127.0.0.1:6379\n  clover-cd sandbox up --detach --mesh gateway-api    http-lb routed by an HTTPRoute\n',
    )
    .action(action(sandboxUp));
}

async function sandboxUp(opts: UpFlags, cmd: Command): Promise<number> {
  await loadEngine();
  const { output } = globalOptions(cmd);
  const dir = dirOf(opts);
  if (opts.netns && process.getuid?.() !== 0)
    throw new InvalidInputError('--netns needs root (it creates network namespaces and veth pairs)');
  if (opts.traceCapacity && !(Number(opts.traceCapacity) > 0))
    throw new InvalidInputError(`--trace-capacity must be a positive number, got "${opts.traceCapacity}"`);
  const running = await runningState(dir);
  if (running)
    throw new InvalidInputError(
      `a sandbox is already running from ${dir} (pid ${running.pid}); stop it with: clover-cd sandbox down`,
    );
  if (!opts.detach) return upForeground(dir, opts, output);
  const s = await upDetached(dir, cmd, opts);
  printResult(output, { ...s.urls, pid: s.pid }, () => urlText(s.urls as unknown as Record<string, string>));
  note(`sandbox running in the background (pid ${s.pid}); stop it with: clover-cd sandbox down`);
  return 0;
}

function registerSandboxStatus(sandbox: Command): void {
  stateOption(sandbox.command('status').description('show the running sandbox: URLs, workloads, faults'))
    .addHelpText(
      'after',
      '\nExit 0 when a sandbox is running, 4 when none is.\n\nExample:\n  clover-cd sandbox status -o json\n',
    )
    .action(action(sandboxShowStatus));
}

/** What the sandbox's admin API answers on /v1/status. */
interface AdminStatus {
  urls: Record<string, string>;
  workloads: Array<{ name: string; version: string; address: string; hostVeth?: string; fault: unknown }>;
  spans: number;
}

async function sandboxShowStatus(opts: { stateDir?: string }, cmd: Command): Promise<number> {
  await loadEngine();
  const dir = dirOf(opts);
  const s = await runningState(dir);
  if (!s)
    throw new InfrastructureError(
      'sandbox',
      join(dir, STATE_FILE),
      'no sandbox is running',
      'start one with: clover-cd sandbox up --detach',
    );
  const status = (await adminClient(s).get<AdminStatus>('/v1/status')).data;
  printResult(globalOptions(cmd).output, { ...status, stateDir: dir }, (d) => statusText(s, d));
  return 0;
}

function statusText(s: SandboxState, d: AdminStatus): string {
  return [
    `sandbox running (pid ${s.pid}, since ${s.startedAt}${s.netns ? ', netns mode' : ''})`,
    urlText(d.urls),
    '',
    table(
      ['workload', 'version', 'address', 'host veth', 'fault'],
      d.workloads.map((w) => [
        w.name,
        w.version,
        w.address,
        w.hostVeth ?? '-',
        w.fault ? JSON.stringify(w.fault) : '-',
      ]),
    ),
    '',
    `spans stored: ${d.spans}`,
  ].join('\n');
}

function registerSandboxDown(sandbox: Command): void {
  stateOption(
    sandbox.command('down').description('stop the sandbox; leaves no process, namespace or file behind'),
  )
    .addHelpText('after', '\nExample:\n  clover-cd sandbox down --state-dir /tmp/sb\n')
    .action(action(sandboxDown));
}

async function sandboxDown(opts: { stateDir?: string }, cmd: Command): Promise<number> {
  await loadEngine();
  const dir = dirOf(opts);
  const s = await runningState(dir);
  if (!s) {
    note(`no sandbox running from ${dir}`);
    return 0;
  }
  await adminClient(s)
    .post('/v1/shutdown', {})
    .catch(() => alive(s.pid) && process.kill(s.pid, 'SIGTERM'));
  const deadline = Date.now() + 15_000;
  while (alive(s.pid) && Date.now() < deadline) await sleep(50);
  if (alive(s.pid)) process.kill(s.pid, 'SIGKILL');
  await sleep(100); // runners see their parent's pipe close and exit
  if (s.namespaces?.length) await removeNamespaces(s.namespaces);
  cleanState(dir);
  printResult(
    globalOptions(cmd).output,
    { stopped: true, pid: s.pid },
    () => `sandbox stopped (pid ${s.pid})`,
  );
  return 0;
}

function registerSandboxApply(sandbox: Command): void {
  stateOption(
    sandbox
      .command('apply')
      .description(
        'apply Kubernetes / Istio objects (VirtualService, DestinationRule, Deployment…) to the running sandbox, live',
      )
      .requiredOption('-f, --filename <file>', 'YAML or JSON file, several documents allowed'),
  )
    .addHelpText('after', '\nExample:\n  clover-cd sandbox apply -f deploy/sdc/istio.yaml\n')
    .action(action(sandboxApply));
}

async function sandboxApply(opts: { filename: string; stateDir?: string }, cmd: Command): Promise<number> {
  await loadEngine();
  const items = readObjects(opts.filename);
  const { platform } = await connectSandbox(dirOf(opts));
  const applied = await platform.apply(items);
  printResult(
    globalOptions(cmd).output,
    applied.map((o) => ({
      kind: o.kind,
      name: o.metadata.name,
      namespace: o.metadata.namespace,
      resourceVersion: o.metadata.resourceVersion,
      generation: o.metadata.generation,
    })),
    (d) =>
      d.map((o) => `${o.kind.toLowerCase()}/${o.name} configured (generation ${o.generation})`).join('\n'),
  );
  return 0;
}

function registerSandboxDelete(sandbox: Command): void {
  stateOption(
    sandbox
      .command('delete')
      .description(
        'delete the objects a file names (kind, namespace, name) from the running sandbox; deleting a Deployment stops its workload',
      )
      .requiredOption(
        '-f, --filename <file>',
        'YAML or JSON file, several documents allowed (only apiVersion, kind, metadata are read)',
      ),
  )
    .addHelpText(
      'after',
      '\nExit 0 when every object was deleted or was already absent (listed as "not found"), 2 for an unreadable file, 4 when no sandbox runs.\n\nExamples:\n  clover-cd sandbox delete -f www-sdc-com.yaml\n  clover-cd sandbox delete -f deploy/sdc/istio.yaml -o json\n',
    )
    .action(action(sandboxDelete));
}

async function sandboxDelete(opts: { filename: string; stateDir?: string }, cmd: Command): Promise<number> {
  await loadEngine();
  const items = readObjects(opts.filename);
  const { platform } = await connectSandbox(dirOf(opts));
  const out = [];
  for (const o of items) {
    const ref = refOf(o);
    out.push({ kind: o.kind, name: ref.name, namespace: ref.namespace, deleted: await platform.delete(ref) });
  }
  printResult(globalOptions(cmd).output, out, (d) =>
    d.map((o) => `${o.kind.toLowerCase()}/${o.name} ${o.deleted ? 'deleted' : 'not found'}`).join('\n'),
  );
  return 0;
}

interface FaultFlags {
  subset?: string;
  errorRate?: string;
  abortStatus?: string;
  delay?: string;
  resetRate?: string;
  clear: boolean;
  stateDir?: string;
}

function registerSandboxFault(sandbox: Command): void {
  stateOption(
    sandbox
      .command('fault')
      .description('set or clear fault knobs on a workload (all versions, or one with --subset)')
      .argument('<workload>', 'app or Deployment name: http-lb, http-lb-v2, clover-server1 …')
      .option(
        '--subset <version>',
        'only this version (label version=<version>); or name the Deployment, e.g. http-lb-v2',
      )
      .option('--error-rate <fraction>', 'share of requests answered with an error status, 0..1')
      .option('--abort-status <code>', 'status for --error-rate (default 500)')
      .option('--delay <duration>', 'latency added to every request, e.g. 100ms')
      .option('--reset-rate <fraction>', 'share of connections reset (TCP RST), 0..1')
      .option('--clear', 'remove the knobs', false),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  clover-cd sandbox fault http-lb --subset v2 --error-rate 0.2\n  clover-cd sandbox fault http-lb-v2 --delay 100ms\n  clover-cd sandbox fault http-lb --subset v2 --clear\n',
    )
    .action(action(sandboxFault));
}

/** The fault the flags ask for: null to clear; refused (exit 2) when a value is not a number or none is given. */
function faultFromFlags(o: FaultFlags): ReturnType<TSandboxControl['checkFault']> | null {
  const num = (v: string | undefined, flag: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidInputError(`${flag} must be a number, got "${v}"`);
    return n;
  };
  let delayMs: number | undefined;
  try {
    delayMs = o.delay === undefined ? undefined : parseDurationMs(o.delay);
  } catch (err) {
    throw new InvalidInputError(`--delay: ${(err as Error).message}`);
  }
  const fault = o.clear
    ? null
    : checkFault({
        errorRate: num(o.errorRate, '--error-rate'),
        abortStatus: num(o.abortStatus, '--abort-status'),
        delayMs,
        resetRate: num(o.resetRate, '--reset-rate'),
      });
  if (fault && Object.values(fault).every((v) => v === undefined))
    throw new InvalidInputError('give at least one of --error-rate, --delay, --reset-rate, or --clear');
  return fault;
}

async function sandboxFault(workload: string, o: FaultFlags, cmd: Command): Promise<number> {
  await loadEngine();
  const fault = faultFromFlags(o);
  const sb = await connectSandbox(dirOf(o));
  await sb.setFault(workload, o.subset, fault);
  printResult(globalOptions(cmd).output, { workload, version: o.subset ?? null, fault }, (d) =>
    d.fault
      ? `fault set on ${workload}${o.subset ? ` ${o.subset}` : ''}: ${JSON.stringify(d.fault)}`
      : `faults cleared on ${workload}${o.subset ? ` ${o.subset}` : ''}`,
  );
  return 0;
}

export function register(program: Command): void {
  const sandbox = program
    .command('sandbox')
    .description('run the SDC sample locally on a mesh with Istio routing, metrics and traces')
    .addHelpText(
      'after',
      `
Examples:
  clover-cd sandbox up --detach                      start in the background; URLs on stdout
  clover-cd sandbox up --detach -o json              {"ingress", "metrics", "jaeger", "grpc", "admin"}
  clover-cd sandbox apply -f canary-90-10.yaml       VirtualService / DestinationRule, live
  clover-cd sandbox delete -f canary-90-10.yaml      remove those objects again
  clover-cd sandbox fault http-lb --subset v2 --error-rate 0.2
  clover-cd sandbox status
  clover-cd sandbox down
`,
    );
  for (const registerSub of [
    registerSandboxUp,
    registerSandboxStatus,
    registerSandboxDown,
    registerSandboxApply,
    registerSandboxDelete,
    registerSandboxFault,
  ])
    registerSub(sandbox);
}
