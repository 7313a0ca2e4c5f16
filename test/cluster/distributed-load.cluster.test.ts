import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { KubeConfig } from '@kubernetes/client-node';
import { KubernetesPlatform } from '../../src/services/kubernetes.js';
import { runLoadStage } from '../../src/stages/index.js';
import type { KubeObject } from '../../src/services/platform.js';
import type { ReleaseSpec } from '../../src/spec/types.js';
import { InterruptedError } from '../../src/util/errors.js';
import { BIN, REPO, runCli } from '../helpers/cli.js';
import { adminKubectl, removeTestNamespace } from '../helpers/cluster.js';
import { startHttpTarget, type HttpTarget } from '../helpers/http-target.js';
import { waitFor } from '../helpers/ports.js';

/**
 * A step's distributed load on a real kube-apiserver (../shared/tools/real-apiserver). It has no controllers and
 * no kubelet, so this suite does their part, as they would: it marks the engines' StatefulSet ready, creates the
 * controller Job's pod, and serves that pod's log — the API server's `pods/log` answer, which a kubelet streams —
 * by running the Job's own command line with the builtin engine in place of the engines (their names resolve only
 * in a cluster), through a proxy in front of the API server that passes every other request on. The objects are
 * compared with `clover-cd load render --kubernetes` for the same release and step. Opt-in (npm run
 * test:cluster), skipped when the server is not up.
 */
const RUN = join(process.env.REALK8S_DIR ?? '/tmp/realk8s', 'run');
const ADMIN = join(RUN, 'admin.kubeconfig');
const up = existsSync(ADMIN) && existsSync(join(RUN, 'kube-apiserver.pid'));
if (!up)
  console.warn(
    `distributed load check skipped: ${ADMIN} does not exist (bash ../shared/tools/real-apiserver/up.sh)`,
  );

const kubectl = adminKubectl;
/** The stand-in controllers' calls: asynchronous, so that the proxy in this process keeps answering meanwhile. */
const kubectlAsync = async (args: string[], input?: string): Promise<string> => {
  const child = promisify(execFile)('kubectl', [`--kubeconfig=${ADMIN}`, '--request-timeout=20s', ...args], {
    cwd: REPO,
    encoding: 'utf8',
  });
  if (input !== undefined) child.child.stdin!.end(input);
  return (await child).stdout;
};
const getJsonAsync = async (path: string): Promise<any> => {
  try {
    return JSON.parse(await kubectlAsync(['get', '--raw', path]));
  } catch {
    return undefined;
  }
};
const getJson = (path: string): KubeObject | undefined => {
  try {
    return JSON.parse(kubectl(['get', '--raw', path])) as KubeObject;
  } catch {
    return undefined;
  }
};

(up ? describe : describe.skip)('load.engines on a real API server', () => {
  const ns = `dist-load-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'dist-load-'));
  const release = 'shop';
  let target: HttpTarget;
  let proxy: Server;
  let platform: KubernetesPlatform;
  /** What the stand-in controllers do; `engineReady` off leaves the StatefulSet unready. */
  const standIn = {
    engineReady: true,
    failedLog: '',
    seen: new Map<string, KubeObject>(),
    controllerRuns: [] as string[],
  };

  const spec = (): ReleaseSpec =>
    ({
      apiVersion: 'clover-cd/v1',
      kind: 'Release',
      metadata: { name: release },
      application: 'shop',
      service: { name: 'web', namespace: ns, port: 80, stable: 'v1', candidate: 'v2', readyTimeout: '60s' },
      strategy: { canary: { steps: [50], window: '10s' } },
      load: {
        engines: 2,
        target: target.origin,
        resources: { cpu: '500m', memory: '768Mi' },
        plan: {
          load_spec: { num_threads: 2, loops: 5 },
          url_list: [{ name: 'home', url: 'http://web/', method: 'GET', 'user-agent': 'chrome' }],
        },
      },
    }) as unknown as ReleaseSpec;

  /** The kubelet's part for the controller pod: the Job's command line, builtin engine for the engines. */
  function controllerLog(res: import('node:http').ServerResponse, pod: string) {
    if (standIn.failedLog) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end(standIn.failedLog);
    }
    const job = standIn.seen.get(`Job`)!;
    const container = (job.spec as any).template.spec.containers[0];
    const cm = standIn.seen.get('ConfigMap')!;
    const plan = join(dir, `${pod}-plan.yaml`);
    writeFileSync(plan, (cm as any).data['plan.yaml']);
    const args: string[] = [...container.args];
    args[2] = plan;
    args.splice(args.indexOf('--remote'), 2);
    args.splice(args.indexOf('--engine'), 2, '--engine', 'builtin');
    args.splice(args.indexOf('--results'), 2, '--results', join(dir, `${pod}.jtl`));
    standIn.controllerRuns.push(join(dir, `${pod}.jtl`));
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NODE_OPTIONS: '' } });
    res.writeHead(200, { 'content-type': 'text/plain' });
    child.stdout.pipe(res, { end: false });
    child.stderr.pipe(res, { end: false });
    child.on('close', () => res.end());
    res.on('close', () => child.kill());
  }

  async function standInLoop(stop: AbortSignal) {
    while (!stop.aborted) {
      const base = `/apis/apps/v1/namespaces/${ns}/statefulsets`;
      for (const item of (await getJsonAsync(base))?.items ?? []) {
        // A list's items carry no apiVersion and kind.
        const sts = { apiVersion: 'apps/v1', kind: 'StatefulSet', ...item };
        standIn.seen.set('StatefulSet', sts);
        if (standIn.engineReady && !sts.status?.readyReplicas) {
          const n = sts.spec.replicas;
          const status = {
            observedGeneration: sts.metadata.generation,
            replicas: n,
            readyReplicas: n,
            currentReplicas: n,
            updatedReplicas: n,
          };
          await kubectlAsync(
            ['replace', '--raw', `${base}/${sts.metadata.name}/status`, '-f', '-'],
            JSON.stringify({ ...sts, status }),
          );
        }
      }
      for (const item of (await getJsonAsync(`/apis/batch/v1/namespaces/${ns}/jobs`))?.items ?? []) {
        const job = { apiVersion: 'batch/v1', kind: 'Job', ...item };
        standIn.seen.set('Job', job);
        const name0 = job.metadata.labels['app.kubernetes.io/name'];
        for (const [kind, path] of [
          ['ConfigMap', `configmaps/${name0}-plan`],
          ['Service', `services/${name0}-engine`],
        ]) {
          // Read while the Job exists; a read after the run deleted them keeps the last one seen.
          const o = await getJsonAsync(`/api/v1/namespaces/${ns}/${path}`);
          if (o) standIn.seen.set(kind, o);
        }
        const pods = `/api/v1/namespaces/${ns}/pods`;
        const name = `${job.metadata.name}-x`;
        if (!(await getJsonAsync(`${pods}/${name}`))) {
          const pod = {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: {
              name,
              namespace: ns,
              labels: { ...job.spec.template.metadata.labels, 'job-name': job.metadata.name },
              ownerReferences: [
                {
                  apiVersion: 'batch/v1',
                  kind: 'Job',
                  name: job.metadata.name,
                  uid: job.metadata.uid,
                  controller: true,
                },
              ],
            },
            // No token controller here to mount a service-account token from: the pod goes without one.
            spec: { ...job.spec.template.spec, automountServiceAccountToken: false },
          };
          await kubectlAsync(['create', '-f', '-'], JSON.stringify(pod));
          const created = await getJsonAsync(`${pods}/${name}`)!;
          await kubectlAsync(
            ['replace', '--raw', `${pods}/${name}/status`, '-f', '-'],
            JSON.stringify({ ...created, status: { phase: 'Running' } }),
          );
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** `clover-cd load render --kubernetes` for this release's step (1-based), with `extra` flags. */
  const renderStep = (step: number, extra: string[] = []) => {
    writeFileSync(join(dir, 'plan.yaml'), yaml.dump(spec().load!.plan));
    const args = ['load', 'render', join(dir, 'plan.yaml'), '--kubernetes', '--release', release];
    return runCli([...args, '--step', String(step), '--namespace', ns, ...extra]);
  };

  const objectsLeft = () =>
    [
      `/api/v1/namespaces/${ns}/configmaps`,
      `/api/v1/namespaces/${ns}/services`,
      `/apis/apps/v1/namespaces/${ns}/statefulsets`,
      `/apis/batch/v1/namespaces/${ns}/jobs`,
    ].flatMap((p) =>
      ((getJson(p) as any)?.items ?? [])
        .map((o: KubeObject) => o.metadata.name)
        .filter((n: string) => n !== 'kube-root-ca.crt'),
    );

  beforeAll(async () => {
    kubectl(['create', 'namespace', ns]);
    // The service-account controller's part: the namespace's `default` account, which pods run as.
    kubectl(['-n', ns, 'create', 'serviceaccount', 'default']);
    target = await startHttpTarget(() => ({ body: 'ok' }));
    const admin = new KubeConfig();
    admin.loadFromFile(ADMIN);
    const cluster = admin.getCurrentCluster()!;
    const user = admin.getCurrentUser()!;
    const apiserver = new URL(cluster.server);
    const ca = cluster.caData ? Buffer.from(cluster.caData, 'base64') : readFileSync(cluster.caFile!);
    proxy = createServer((req, res) => {
      const log = /^\/api\/v1\/namespaces\/[^/]+\/pods\/([^/]+)\/log\?/.exec(req.url ?? '');
      if (log) return controllerLog(res, log[1]);
      const upstream = httpsRequest(
        {
          host: apiserver.hostname,
          port: apiserver.port,
          path: req.url,
          method: req.method,
          headers: { ...req.headers, host: apiserver.host },
          ca,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'proxy', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'admin', token: user.token }],
      contexts: [{ name: 'proxy', cluster: 'proxy', user: 'admin' }],
      currentContext: 'proxy',
    });
    platform = new KubernetesPlatform(kc);
  }, 60_000);

  afterAll(async () => {
    await target?.stop();
    await new Promise((r) => proxy?.close(r));
    removeTestNamespace(kubectl, ns, 'pods,jobs.batch,statefulsets.apps,services,configmaps');
  });

  it("a step creates exactly `load render --kubernetes`'s objects, owned by the plan's ConfigMap, reads its results from the controller's log, and deletes them at the window's end", async () => {
    const stop = new AbortController();
    const loop = standInLoop(stop.signal);
    let r;
    try {
      r = await runLoadStage(platform, spec(), { distributed: { step: 0 }, durationS: 30, resultsDir: dir });
    } finally {
      stop.abort();
      await loop;
    }
    const runId = r.load.runId!;
    // The objects as the API server holds them carry everything the render shows, for the same step and run id.
    const render = await renderStep(1, [
      ...['--engines', '2', '--target', target.origin, '--duration', '30', '--run-id', runId],
      ...['--engine-cpu', '500m', '--engine-memory', '768Mi'],
    ]);
    expect(render.code).toBe(0);
    const docs = yaml.loadAll(render.stdout) as KubeObject[];
    expect(docs.map((d) => d.kind)).toEqual(['ConfigMap', 'Service', 'StatefulSet', 'Job']);
    const owner = standIn.seen.get('ConfigMap')!;
    for (const d of docs) {
      const seen = standIn.seen.get(d.kind)!;
      expect(seen).toMatchObject(d);
      expect(seen.metadata.ownerReferences).toEqual(
        d.kind === 'ConfigMap'
          ? undefined
          : [
              expect.objectContaining({
                kind: 'ConfigMap',
                name: owner.metadata.name,
                uid: owner.metadata.uid,
              }),
            ],
      );
    }
    expect(yaml.load((owner as any).data['plan.yaml'])).toEqual(spec().load!.plan);
    expect(owner.metadata.labels).toMatchObject({
      'clover-cd.io/release': release,
      'clover-cd.io/step': '1',
    });
    // The results came back on the log, whole: the streamed JTL is the controller's own, row for row.
    const controllerJtl = readFileSync(standIn.controllerRuns.at(-1)!, 'utf8').trim().split('\n');
    expect(readFileSync(r.load.jtlPath, 'utf8').trim().split('\n')).toEqual(controllerJtl);
    expect(r.load.summary.total.count).toBe(10);
    expect(target.byLoadTag[runId]).toBe(10);
    expect(r.load.engineHosts).toEqual(['shop-load-1-engine-0', 'shop-load-1-engine-1']);
    // Two engines would have sent 20: the stand-in ran the plan once, and the completeness check says so.
    expect(r.load.countProblem).toMatch(/received 10 of the 20 samples/);
    expect(objectsLeft()).toEqual([]);
  }, 120_000);

  it('an abort while the engines start deletes everything at once (exit 130); the next run removes what a killed one left', async () => {
    // What a killed run of step 2 left behind: its objects, applied as the render shows them.
    const left = await renderStep(2);
    kubectl(['apply', '-f', '-'], left.stdout);
    expect(objectsLeft().sort()).toEqual(
      ['shop-load-2-controller', 'shop-load-2-engine', 'shop-load-2-engine', 'shop-load-2-plan'].sort(),
    );
    standIn.engineReady = false;
    const stop = new AbortController();
    const loop = standInLoop(stop.signal);
    const abort = new AbortController();
    try {
      const run = runLoadStage(platform, spec(), {
        distributed: { step: 0 },
        durationS: 30,
        signal: abort.signal,
      });
      let failed: unknown;
      run.catch((err) => (failed = err));
      await waitFor(
        'the engines of step 1',
        async () => {
          if (failed) throw failed;
          return Boolean(getJson(`/apis/apps/v1/namespaces/${ns}/statefulsets/shop-load-1-engine`));
        },
        30_000,
      );
      expect(objectsLeft().filter((n) => n.startsWith('shop-load-2'))).toEqual([]);
      abort.abort();
      await expect(run).rejects.toBeInstanceOf(InterruptedError);
    } finally {
      stop.abort();
      await loop;
      standIn.engineReady = true;
    }
    expect(objectsLeft()).toEqual([]);
  }, 120_000);

  it('a controller that ends without results is exit 4 naming its Job and what it said; nothing is left', async () => {
    standIn.failedLog = 'Error: JMeter could not reach its engines\n';
    const stop = new AbortController();
    const loop = standInLoop(stop.signal);
    try {
      await expect(
        runLoadStage(platform, spec(), { distributed: { step: 0 }, durationS: 30 }),
      ).rejects.toMatchObject({
        exitCode: 4,
        message: expect.stringMatching(
          /Job dist-load-\d+\/shop-load-1-controller\): the load controller ended without results:\n\s+Error: JMeter could not reach its engines/,
        ),
      });
    } finally {
      stop.abort();
      await loop;
      standIn.failedLog = '';
    }
    expect(objectsLeft()).toEqual([]);
  }, 120_000);
});
