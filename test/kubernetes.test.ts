import { describe, it, expect, beforeAll, afterAll, beforeEach } from '@jest/globals';
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeKubeApi, type FakeKubeApi } from './helpers/fake-kube-api.js';
import {
  createKubernetesPlatform,
  listContexts,
  loadKubeConfig,
  modifyWithRetry,
  type KubernetesPlatform,
} from '../src/services/kubernetes.js';
import { ConflictError } from '../src/services/platform.js';
import { InfrastructureError, InvalidInputError } from '../src/util/errors.js';

const VS = 'networking.istio.io/v1beta1';
const vsRef = { apiVersion: VS, kind: 'VirtualService', namespace: 'default', name: 'http-lb' };
const vs = {
  apiVersion: VS,
  kind: 'VirtualService',
  metadata: { name: 'http-lb', namespace: 'default' },
  spec: {
    hosts: ['http-lb'],
    http: [{ name: 'primary', route: [{ destination: { host: 'http-lb', subset: 'v1' }, weight: 100 }] }],
  },
};
const deployment = (replicas: number, status: Record<string, unknown>) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'http-lb-v2', namespace: 'default', labels: { app: 'http-lb', version: 'v2' } },
  spec: {
    replicas,
    selector: { matchLabels: { app: 'http-lb', version: 'v2' } },
    template: {
      metadata: { labels: { app: 'http-lb' } },
      spec: { containers: [{ name: 'lb', image: 'lb:2' }] },
    },
  },
  status,
});

let api: FakeKubeApi;
let dir: string;
let kubeconfig: string;
let k8s: KubernetesPlatform;
const ours = () =>
  api.requests.filter((r) => !/^\/apis?\/[^/]+(\/[^/]+)?$/.test(r.path) || r.method !== 'GET'); // without discovery

beforeAll(async () => {
  api = await startFakeKubeApi();
  dir = mkdtempSync(join(tmpdir(), 'kube-'));
  kubeconfig = join(dir, 'config');
  writeFileSync(kubeconfig, api.kubeconfig());
  k8s = createKubernetesPlatform({ kubeconfig, attempts: 2, timeoutMs: 5000 });
});
afterAll(async () => {
  await api.stop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  api.requests.length = 0;
});

describe('kubeconfig', () => {
  it('lists contexts, switches context, and refuses an unknown one naming the known ones', () => {
    const kc = loadKubeConfig({ kubeconfig });
    expect(listContexts(kc)).toEqual([
      { name: 'fake', cluster: 'fake', namespace: 'default', current: true },
      { name: 'other', cluster: 'fake', namespace: 'sdc', current: false },
    ]);
    expect(loadKubeConfig({ kubeconfig, context: 'other' }).getCurrentContext()).toBe('other');
    expect(() => loadKubeConfig({ kubeconfig, context: 'prod' })).toThrow(InvalidInputError);
    expect(() => loadKubeConfig({ kubeconfig, context: 'prod' })).toThrow(
      /no context "prod"; contexts: fake, other/,
    );
  });
  it('in-cluster config without a service account is an exit-2 error', () => {
    const saved = process.env.KUBERNETES_SERVICE_HOST;
    delete process.env.KUBERNETES_SERVICE_HOST;
    try {
      expect(() => loadKubeConfig({ inCluster: true, inClusterRoot: dir })).toThrow(
        /not running in a pod: KUBERNETES_SERVICE_HOST is not set/,
      );
      const sa = join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
      mkdirSync(sa, { recursive: true });
      writeFileSync(join(sa, 'token'), 'sa-token-abcdef');
      writeFileSync(join(sa, 'namespace'), 'sdc');
      process.env.KUBERNETES_SERVICE_HOST = '10.0.0.1';
      process.env.KUBERNETES_SERVICE_PORT = '443';
      const kc = loadKubeConfig({ inCluster: true, inClusterRoot: dir });
      expect(kc.getCurrentCluster()?.server).toBe('https://10.0.0.1:443');
      expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('sdc');
    } finally {
      if (saved) process.env.KUBERNETES_SERVICE_HOST = saved;
      else delete process.env.KUBERNETES_SERVICE_HOST;
      delete process.env.KUBERNETES_SERVICE_PORT;
    }
  });
});

describe('Kubernetes platform against the API server', () => {
  it('lists namespaces with the bearer token', async () => {
    api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
    api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sdc' } });
    expect(await k8s.namespaces()).toEqual(['default', 'sdc']);
    expect(api.requests.at(-1)).toMatchObject({
      method: 'GET',
      path: '/api/v1/namespaces',
      authorization: 'Bearer fake-token-123456',
    });
  });

  it('applies with server-side apply (apply-patch content type, fieldManager, force)', async () => {
    const [created] = await k8s.apply([vs]);
    expect(created.metadata.resourceVersion).toBeDefined();
    const req = ours().find((r) => r.method === 'PATCH')!;
    expect(req).toMatchObject({
      path: '/apis/networking.istio.io/v1beta1/namespaces/default/virtualservices/http-lb',
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: 'clover-cd', force: 'true' },
      body: vs,
    });
  });

  it('get returns undefined on 404 and the object otherwise', async () => {
    expect(await k8s.get({ ...vsRef, name: 'missing' })).toBeUndefined();
    expect(api.requests.at(-1)).toMatchObject({
      method: 'GET',
      path: '/apis/networking.istio.io/v1beta1/namespaces/default/virtualservices/missing',
    });
    expect((await k8s.get(vsRef))?.spec).toEqual(vs.spec);
  });

  it('patches custom resources with JSON merge patch carrying the resourceVersion', async () => {
    const current = (await k8s.get(vsRef))!;
    api.requests.length = 0;
    const patched = await k8s.patch(
      vsRef,
      { metadata: { annotations: { a: '1' } } },
      { resourceVersion: current.metadata.resourceVersion },
    );
    expect(patched.metadata.annotations).toEqual({ a: '1' });
    const [req] = ours();
    expect(req.method).toBe('PATCH');
    expect(req.contentType).toBe('application/merge-patch+json');
    expect(req.query).toEqual({ fieldManager: 'clover-cd' });
    expect(req.body).toEqual({
      apiVersion: VS,
      kind: 'VirtualService',
      metadata: {
        annotations: { a: '1' },
        name: 'http-lb',
        namespace: 'default',
        resourceVersion: current.metadata.resourceVersion,
      },
    });
  });

  it('a stale resourceVersion is a ConflictError; modifyWithRetry re-reads and retries with the fresh one', async () => {
    const stale = (await k8s.get(vsRef))!;
    await k8s.patch(vsRef, { metadata: { labels: { other: 'writer' } } });
    await expect(
      k8s.patch(
        vsRef,
        { metadata: { annotations: { b: '2' } } },
        { resourceVersion: stale.metadata.resourceVersion },
      ),
    ).rejects.toBeInstanceOf(ConflictError);
    // A concurrent writer wins the first race: the first guarded patch gets 409, the retry succeeds.
    api.injected.push({
      method: 'PATCH',
      pathIncludes: '/virtualservices/http-lb',
      status: 409,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        reason: 'Conflict',
        code: 409,
        message: 'the object has been modified',
      },
    });
    api.requests.length = 0;
    const seen: string[] = [];
    const out = await modifyWithRetry(k8s, vsRef, (cur) => {
      seen.push(cur.metadata.resourceVersion!);
      return { metadata: { annotations: { b: '2' } } };
    });
    expect(out.metadata.annotations).toMatchObject({ b: '2' });
    const sent = ours().map((r) =>
      `${r.method} ${r.path.split('/').pop()} ${(r.body as { metadata?: { resourceVersion?: string } })?.metadata?.resourceVersion ?? ''}`.trim(),
    );
    expect(sent).toEqual([
      `GET http-lb`,
      `PATCH http-lb ${seen[0]}`,
      `GET http-lb`,
      `PATCH http-lb ${seen[1]}`,
    ]);
  });

  it('errors name the verb and the object; 5xx are retried a bounded number of times', async () => {
    api.injected.push(
      { method: 'GET', pathIncludes: '/virtualservices/http-lb', status: 503 },
      { method: 'GET', pathIncludes: '/virtualservices/http-lb', status: 503 },
    );
    const err = await k8s.get(vsRef).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfrastructureError);
    expect((err as Error).message).toContain('Kubernetes API (get VirtualService default/http-lb): HTTP 503');
    expect(api.requests.filter((r) => r.path.endsWith('/http-lb')).length).toBe(2);
    const bad = createKubernetesPlatform({
      kubeconfig: (() => {
        const f = join(dir, 'bad');
        writeFileSync(f, api.kubeconfig().replace('fake-token-123456', 'wrong-token-999'));
        return f;
      })(),
      attempts: 1,
    });
    const denied = await bad.patch(vsRef, { spec: {} }).catch((e: unknown) => e as Error);
    expect((denied as Error).message).toMatch(/patch VirtualService default\/http-lb\): HTTP 401/);
    expect((denied as Error).message).not.toContain('wrong-token-999');
  });

  it('lists with a label selector and deletes (404 → false)', async () => {
    api.put(deployment(2, {}));
    api.put({
      ...deployment(1, {}),
      metadata: { name: 'http-lb-v1', namespace: 'default', labels: { app: 'http-lb', version: 'v1' } },
    });
    const items = await k8s.list('apps/v1', 'Deployment', 'default', 'version=v2');
    expect(items.map((i) => i.metadata.name)).toEqual(['http-lb-v2']);
    expect(api.requests.at(-1)).toMatchObject({
      path: '/apis/apps/v1/namespaces/default/deployments',
      query: { labelSelector: 'version=v2' },
    });
    expect(
      await k8s.delete({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        namespace: 'default',
        name: 'http-lb-v1',
      }),
    ).toBe(true);
    expect(
      await k8s.delete({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        namespace: 'default',
        name: 'http-lb-v1',
      }),
    ).toBe(false);
  });

  it('rollout status follows observedGeneration, updated and available replicas through a watch', async () => {
    const d = api.put(
      deployment(2, { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }),
    );
    // A new generation: not ready until the controller observes it and the new replicas are available.
    const d2 = api.put({
      ...d,
      spec: {
        ...d.spec,
        template: { ...d.spec.template, spec: { containers: [{ name: 'lb', image: 'lb:3' }] } },
      },
    });
    expect(d2.metadata.generation).toBe(2);
    expect(await k8s.workloadStatus('default', 'http-lb-v2')).toMatchObject({
      ready: false,
      message: expect.stringContaining('generation 2, observed 1'),
    });
    const seen: string[] = [];
    const done = k8s.waitForRollout('default', 'http-lb-v2', 10_000, (s) => seen.push(s.message));
    const cur = () => api.object('apps/v1', 'Deployment', 'default', 'http-lb-v2')!;
    const step = (status: Record<string, unknown>) => api.put({ ...cur(), status });
    // The controller progresses only after the watch is open (as seen by the server).
    const waitWatch = async () => {
      for (let i = 0; i < 200 && !api.requests.some((r) => r.query.watch === 'true'); i++)
        await new Promise((r) => setTimeout(r, 10));
    };
    await waitWatch();
    step({ observedGeneration: 2, replicas: 3, updatedReplicas: 1, availableReplicas: 2 });
    step({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 1 });
    step({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 });
    const final = await done;
    expect(final).toMatchObject({ ready: true, replicas: 2, availableReplicas: 2 });
    expect(seen).toEqual([
      'waiting for the rollout to be observed (generation 2, observed 1)',
      '1 of 2 replicas updated',
      '1 of 2 updated replicas available',
      '2/2 replicas updated and available',
    ]);
    const watch = api.requests.find((r) => r.query.watch === 'true')!;
    expect(watch.path).toBe('/apis/apps/v1/namespaces/default/deployments');
    expect(watch.query).toMatchObject({
      fieldSelector: 'metadata.name=http-lb-v2',
      resourceVersion: d2.metadata.resourceVersion,
    });
  });

  it('rollout status times out with exit 4 naming the Deployment, and fails fast on ProgressDeadlineExceeded', async () => {
    const err = await k8s.waitForRollout('default', 'http-lb-v2', 0).catch((e: unknown) => e);
    api.put({ ...api.object('apps/v1', 'Deployment', 'default', 'http-lb-v2')!, spec: { replicas: 5 } });
    const slow = await k8s
      .waitForRollout('default', 'http-lb-v2', 300)
      .catch((e: unknown) => e as InfrastructureError);
    expect(slow).toBeInstanceOf(InfrastructureError);
    expect((slow as InfrastructureError).exitCode).toBe(4);
    expect((slow as Error).message).toMatch(
      /rollout status Deployment default\/http-lb-v2\): not complete after 0s/,
    );
    api.put({
      ...api.object('apps/v1', 'Deployment', 'default', 'http-lb-v2')!,
      status: {
        observedGeneration: 99,
        conditions: [
          {
            type: 'Progressing',
            status: 'False',
            reason: 'ProgressDeadlineExceeded',
            message: 'ReplicaSet "x" has timed out progressing.',
          },
        ],
      },
    });
    await expect(k8s.waitForRollout('default', 'http-lb-v2', 10_000)).rejects.toThrow(
      /progress deadline exceeded: ReplicaSet "x" has timed out/,
    );
    expect(err).toBeDefined();
  });
});
