/**
 * Traffic commands as a user runs them (the real CLI) against a Kubernetes API server at the HTTP level,
 * asserting the requests sent, idempotence, conflict handling and the original routes coming back.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { startFakeKubeApi, type FakeKubeApi } from './helpers/fake-kube-api.js';
import { runCli } from './helpers/cli.js';
import { createKubernetesPlatform } from '../src/services/kubernetes.js';
import { promote, rollback, setTraffic } from '../src/stages/index.js';
import { loadSpec } from '../src/spec/load.js';
import { STATE_ANNOTATION } from '../src/routers/state.js';

const V = 'networking.istio.io/v1beta1';
const original = [
  { name: 'admin', match: [{ uri: { prefix: '/admin' } }], route: [{ destination: { host: 'admin' } }] },
  {
    name: 'lb',
    retries: { attempts: 2 },
    route: [{ destination: { host: 'http-lb', subset: 'v1', port: { number: 9180 } }, weight: 100 }],
  },
];
let api: FakeKubeApi;
let dir: string;
let specFile: string;
let kubeconfig: string;
const k = (...args: string[]) =>
  runCli([...args, '--platform', 'kubernetes', '--kubeconfig', kubeconfig], { timeoutMs: 30_000 });
const vs = () => api.object(V, 'VirtualService', 'default', 'http-lb')!;
const platform = () => createKubernetesPlatform({ kubeconfig });
const spec = () => loadSpec(specFile).spec;
const patches = () =>
  api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/virtualservices/http-lb'));

beforeAll(async () => {
  api = await startFakeKubeApi();
  dir = mkdtempSync(join(tmpdir(), 'traffic-'));
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, api.kubeconfig());
  specFile = join(dir, 'spec.yaml');
  writeFileSync(
    specFile,
    yaml.dump({
      apiVersion: 'clover-cd/v1',
      kind: 'Release',
      metadata: { name: 'http-lb-canary' },
      application: 'sdc',
      service: {
        name: 'http-lb',
        namespace: 'default',
        port: 9180,
        stable: 'v1',
        candidate: 'v2',
        readyTimeout: '3s',
      },
      strategy: { canary: { steps: [10, 50], window: '10s' } },
      load: {
        plan: { load_spec: { num_threads: 2, loops: 10 }, url_list: [{ name: 'root', url: 'http://x/' }] },
      },
      gate: { minSamples: 50, rules: [{ errorRate: { max: '1%' } }] },
    }),
  );
});
afterAll(async () => {
  await api.stop();
  rmSync(dir, { recursive: true, force: true });
});
/** The candidate's Deployment as a controller reports it: ready, or created and never progressing. */
const candidate = (ready: boolean) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'http-lb-v2', namespace: 'default', generation: 1 },
  spec: { replicas: 1 },
  status: ready ? { observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1 } : {},
});
beforeEach(() => {
  api.missingGroups.clear();
  api.put({
    apiVersion: V,
    kind: 'VirtualService',
    metadata: { name: 'http-lb', namespace: 'default' },
    spec: { hosts: ['http-lb'], http: original },
  });
  api.put(candidate(true));
  api.requests.length = 0;
});

describe('traffic commands on Kubernetes', () => {
  it('set --weight patches only the managed route with a merge patch guarded by resourceVersion; again is a no-op', async () => {
    const rv = vs().metadata.resourceVersion;
    const r = await k('traffic', 'set', specFile, '--weight', '10', '-o', 'json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      stable: { version: 'v1', weight: 90 },
      candidate: { version: 'v2', weight: 10 },
      changed: true,
    });
    const [p] = patches();
    expect(p.contentType).toBe('application/merge-patch+json');
    const body = p.body as {
      metadata: { resourceVersion: string; annotations: Record<string, string> };
      spec: { http: unknown[] };
    };
    expect(body.metadata.resourceVersion).toBe(rv);
    expect(JSON.parse(body.metadata.annotations[STATE_ANNOTATION])).toMatchObject({
      phase: 'progressing',
      weight: 10,
      reason: 'set by hand to 10%',
    });
    expect(body.spec.http).toEqual([
      original[0],
      {
        name: 'lb',
        retries: { attempts: 2 },
        route: [
          { destination: { host: 'http-lb', subset: 'v1', port: { number: 9180 } }, weight: 90 },
          { destination: { host: 'http-lb', subset: 'v2', port: { number: 9180 } }, weight: 10 },
        ],
      },
    ]);
    const again = await setTraffic(platform(), spec(), { weight: 10 });
    expect(again).toMatchObject({ exitCode: 0, changed: false, message: 'already at 10%: nothing changed' });
    expect(patches()).toHaveLength(1);
  });

  it('set --step, get, then rollback: 100% stable, every other route and field kept, state and routes agree', async () => {
    expect((await setTraffic(platform(), spec(), { step: 2 })).candidate.weight).toBe(50);
    const got = await k('traffic', 'get', specFile, '-o', 'json');
    expect(JSON.parse(got.stdout)).toMatchObject({
      candidate: { weight: 50 },
      state: { phase: 'progressing', step: 1 },
    });
    const rb = await k('traffic', 'rollback', specFile);
    expect(rb.code).toBe(0);
    expect(rb.stdout).toMatch(
      /rolled back: 100% of traffic on v1; not verified: no metrics to observe traffic with/,
    );
    expect(vs().spec.http[0]).toEqual(original[0]);
    expect(vs().spec.http[1]).toMatchObject({ name: 'lb', retries: { attempts: 2 } });
    expect(
      vs().spec.http[1].route.map((d: { destination: { subset: string }; weight: number }) => [
        d.destination.subset,
        d.weight,
      ]),
    ).toEqual([
      ['v1', 100],
      ['v2', 0],
    ]);
    expect(JSON.parse(vs().metadata.annotations[STATE_ANNOTATION])).toMatchObject({
      phase: 'rolledBack',
      weight: 0,
      cause: 'manual',
    });
    expect(vs().metadata.annotations['clover-cd.io/candidate-weight']).toBe('0');
    expect((await rollback(platform(), spec())).changed).toBe(false);
  });

  it('promote sends 100% to the candidate', async () => {
    await setTraffic(platform(), spec(), { weight: 50 });
    expect(await promote(platform(), spec())).toMatchObject({
      stable: { weight: 0 },
      candidate: { weight: 100 },
      state: { phase: 'promoted' },
    });
  });

  it("a concurrent writer (409) is retried with a fresh read, keeping the other writer's change", async () => {
    const platform = createKubernetesPlatform({ kubeconfig });
    const { spec } = loadSpec(specFile);
    // Another controller changes the admin route between our read and our patch.
    let raced = false;
    const realGet = platform.get.bind(platform);
    platform.get = async (ref) => {
      const o = await realGet(ref);
      if (!raced && ref.kind === 'VirtualService') {
        raced = true;
        const cur = vs();
        api.put({
          ...cur,
          spec: { ...cur.spec, http: [{ ...original[0], timeout: '3s' }, cur.spec.http[1]] },
        });
      }
      return o;
    };
    await setTraffic(platform, spec, { weight: 10 });
    const sent = patches().map(
      (p) => (p.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion,
    );
    expect(sent).toHaveLength(2);
    expect(sent[0]).not.toBe(sent[1]);
    expect(vs().spec.http[0]).toMatchObject({ name: 'admin', timeout: '3s' });
    expect(vs().spec.http[1].route.map((d: { weight: number }) => d.weight)).toEqual([90, 10]);
  });

  it('after a promotion, rollback still lands on v1 and keeps a route another writer added', async () => {
    await setTraffic(platform(), spec(), { weight: 50 });
    await promote(platform(), spec());
    const cur = vs();
    const debug = {
      name: 'debug-route',
      match: [{ headers: { 'x-debug': { exact: '1' } } }],
      route: [{ destination: { host: 'debug' } }],
    };
    api.put({ ...cur, spec: { ...cur.spec, http: [debug, ...cur.spec.http] } });
    const r = await rollback(platform(), spec());
    expect(r).toMatchObject({
      stable: { weight: 100 },
      candidate: { weight: 0 },
      state: { phase: 'rolledBack' },
    });
    expect(vs().spec.http.map((h: { name: string }) => h.name)).toEqual(['debug-route', 'admin', 'lb']);
  });

  it('a candidate that never becomes ready: no weight changes, exit 4 within the bound, naming the Deployment', async () => {
    api.put(candidate(false));
    const t0 = Date.now();
    const r = await k('traffic', 'set', specFile, '--weight', '10');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/Deployment default\/http-lb-v2.*not ready after 3s.*no traffic was moved/s);
    expect(r.stderr).toMatch(/kubectl -n default rollout status deployment\/http-lb-v2/);
    expect(Date.now() - t0).toBeLessThan(25_000);
    expect(patches()).toHaveLength(0);
  });

  it('a missing Istio CRD is reported as such, not as an unreachable server', async () => {
    api.missingGroups.add('networking.istio.io');
    const r = await k('traffic', 'get', specFile);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/does not serve VirtualService .*CustomResourceDefinition is not installed/);
    expect(r.stderr).not.toMatch(/reachable/);
  });

  it('refuses bad input with exit 2 and changes nothing', async () => {
    expect((await k('traffic', 'set', specFile, '--weight', '120')).code).toBe(2);
    for (const bad of ['', 'abc', '1e1', '10.5']) {
      const r = await k('traffic', 'set', specFile, '--weight', bad);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--weight must be an integer/);
    }
    await expect(setTraffic(platform(), spec(), { step: 3 })).rejects.toThrow(/step must be 1\.\.2/);
    api.put({ ...vs(), spec: { hosts: ['http-lb'], http: [original[0]] } });
    const r = await k('traffic', 'set', specFile, '--weight', '10');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/VirtualService default\/http-lb has no HTTP route to http-lb subset v1/);
    expect(patches()).toHaveLength(0);
  });

  it('release refuses a plan whose first step cannot reach minSamples (exit 2, with the numbers, nothing changed)', async () => {
    const r = await k('release', specFile, '--auto-approve');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /the candidate would get 2 requests but gate.minSamples is 50: 10% of the 20 requests/,
    );
    expect(r.stderr).toMatch(/nothing was changed/);
    expect(api.requests.filter((q) => q.method !== 'GET')).toHaveLength(0);
  });

  describe('"nothing was changed" only when nothing was', () => {
    /** The same release without load: `release run` goes straight to preparing the routes. */
    const noLoadSpec = () => {
      const file = join(dir, 'no-load.yaml');
      const doc = yaml.load(readFileSync(specFile, 'utf8')) as Record<string, unknown>;
      delete doc.load;
      writeFileSync(file, yaml.dump(doc));
      return file;
    };
    const DR = {
      apiVersion: 'networking.istio.io/v1beta1',
      kind: 'DestinationRule',
      namespace: 'default',
      name: 'http-lb',
    };

    it('a VirtualService without the managed route is refused before anything is written, and the report says so', async () => {
      await platform().delete(DR);
      api.put({ ...vs(), spec: { hosts: ['http-lb'], http: [original[0]] } });
      api.requests.length = 0;
      const r = await k('release', noLoadSpec(), '--auto-approve');
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/VirtualService default\/http-lb has no HTTP route to http-lb subset v1/);
      expect(r.stderr).toMatch(/nothing was changed\./);
      expect(api.requests.filter((q) => q.method !== 'GET')).toEqual([]);
    });

    it('an error after a write names what was written instead', async () => {
      await platform().delete(DR);
      api.put(candidate(false));
      const r = await k('release', noLoadSpec(), '--auto-approve');
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/not ready after 3s/);
      // The routing objects were made ready for the release before the candidate's readiness was waited for.
      expect(r.stderr).toMatch(
        /changed before the error:\n {2}- DestinationRule default\/http-lb: applied\n/,
      );
      expect(r.stderr).not.toMatch(/nothing was changed/);
      expect(api.object(DR.apiVersion, DR.kind, DR.namespace, DR.name)).toBeDefined();
    });
  });

  it('an unreachable API server is exit 4 naming the verb and object', async () => {
    const bad = join(dir, 'bad');
    writeFileSync(bad, api.kubeconfig().replace(api.url, 'http://127.0.0.1:1'));
    const r = await runCli(['traffic', 'get', specFile, '--platform', 'kubernetes', '--kubeconfig', bad], {
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/Kubernetes API \(get VirtualService default\/http-lb\)/);
    expect(r.stderr).not.toContain('fake-token-123456');
  });
});
