import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { executePipeline } from '../../src/pipelines/local-run/index.js';
import { createKubernetesPlatform } from '../../src/services/kubernetes.js';
import { waitUntilReady } from '../../src/stages/engine/index.js';
import type { ReleaseSpec } from '../../src/spec/types.js';
import { adminKubectl, removeTestNamespace } from '../helpers/cluster.js';

/**
 * A local run's deployManifest stage on a real kube-apiserver (../shared/tools/real-apiserver: no controllers, so a
 * Deployment is ready only once its status says so): the stage applies the manifest and waits with the release
 * engine's readiness rule — it fails naming the Deployment, the reason the engine gives for the same Deployment and
 * the command to look at it, and it ends as soon as the status reports the rollout complete. In a namespace of its
 * own, deleted afterwards. Opt-in (npm run test:cluster), skipped when the server is not up.
 */
const ADMIN = join(process.env.REALK8S_DIR ?? '/tmp/realk8s', 'run', 'admin.kubeconfig');
const up = existsSync(ADMIN);
if (!up)
  console.warn(
    `local-run readiness check skipped: ${ADMIN} does not exist (bash ../shared/tools/real-apiserver/up.sh)`,
  );

const kubectl = adminKubectl;

const deployment = (name: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, labels: { app: name } },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: 'web', image: 'nginx:1.25' }] },
    },
  },
});

const deployPipeline = (ns: string, name: string) => ({
  application: 'sdc',
  name: 'deploy',
  stages: [
    {
      refId: '1',
      requisiteStageRefIds: [],
      type: 'deployManifest',
      name: 'Deploy',
      source: 'text',
      namespaceOverride: ns,
      manifests: [deployment(name)],
    },
  ],
});

(up ? describe : describe.skip)("a local run's deployManifest on a real API server", () => {
  const ns = `local-run-ready-${process.pid}`;
  const platform = createKubernetesPlatform({ kubeconfig: ADMIN });
  beforeAll(() => {
    kubectl(['create', 'namespace', ns]);
  });
  afterAll(() => {
    removeTestNamespace(kubectl, ns, 'deployments.apps');
  });

  it('fails a Deployment that does not become ready with the reason the engine gives and the command to look at it', async () => {
    const r = await executePipeline(deployPipeline(ns, 'never-ready'), { platform, readyTimeoutMs: 1500 });
    expect(r.status).toBe('TERMINAL');
    const [stage] = r.stages;
    expect(stage.status).toBe('TERMINAL');
    expect(stage.context['outputs.manifestNamesByNamespace']).toEqual({ [ns]: ['deployment never-ready'] });
    // The release engine, asked about the same Deployment, gives the same reason: one readiness rule.
    const spec = {
      service: {
        namespace: ns,
        candidateManifests: [
          { ...deployment('never-ready'), metadata: { name: 'never-ready', namespace: ns } },
        ],
      },
    } as unknown as ReleaseSpec;
    const engine = await waitUntilReady(platform, spec, { timeoutMs: 200 }).catch((e: Error) => e.message);
    const reason = /not ready after \d+s: ([^;\n]+)/.exec(String(engine))?.[1];
    expect(reason).toMatch(/replicas|generation/);
    expect(stage.message).toContain(
      `Kubernetes API (rollout status Deployment ${ns}/never-ready): the Deployment is not ready after 2s: ${reason}`,
    );
    expect(stage.message).toContain(`check: kubectl -n ${ns} rollout status deployment/never-ready`);
  });

  it('ends the wait when the Deployment reports its rollout complete', async () => {
    const run = executePipeline(deployPipeline(ns, 'becomes-ready'), { platform, readyTimeoutMs: 60_000 });
    // What the Deployment controller and kubelet would write once the pod is available.
    let applied = await platform.get({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      namespace: ns,
      name: 'becomes-ready',
    });
    for (let i = 0; !applied && i < 100; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      applied = await platform.get({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        namespace: ns,
        name: 'becomes-ready',
      });
    }
    expect(applied).toBeDefined();
    const status = {
      observedGeneration: applied!.metadata.generation,
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
    };
    kubectl([
      '-n',
      ns,
      'patch',
      'deployment',
      'becomes-ready',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
    const r = await run;
    expect(r.stages[0]).toMatchObject({
      status: 'SUCCEEDED',
      message: 'applied 1 manifest(s); deployments ready',
    });
    expect(r.status).toBe('SUCCEEDED');
  });
});
