import { afterAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { REPO } from '../helpers/cli.js';
import { adminKubectl, removeTestNamespace } from '../helpers/cluster.js';

/**
 * deploy/clover-cd/overlays/mesh-auth against a real kube-apiserver with Istio's CRDs (../shared/tools/real-apiserver):
 * its PeerAuthentication, AuthorizationPolicy and server Deployment are accepted, stored without a field pruned (a
 * misspelt field would be dropped silently by the CRD's structural schema), and the principal the policy admits is
 * the one `serve` is told to trust. Applied in a namespace of its own, deleted afterwards. Opt-in (npm run
 * test:cluster), skipped when the server is not up.
 */
const ADMIN = join(process.env.REALK8S_DIR ?? '/tmp/realk8s', 'run', 'admin.kubeconfig');
const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const up = existsSync(ADMIN);
if (!up)
  console.warn(
    `mesh-auth cluster check skipped: ${ADMIN} does not exist (bash ../shared/tools/real-apiserver/up.sh)`,
  );

type Obj = Record<string, any>;
const kubectl = adminKubectl;

(up ? describe : describe.skip)('the mesh-auth overlay on a real API server', () => {
  const ns = `mesh-auth-check-${process.pid}`;
  afterAll(() => {
    removeTestNamespace(
      kubectl,
      ns,
      'deployments.apps,peerauthentications.security.istio.io,authorizationpolicies.security.istio.io',
    );
  });

  it('is accepted and stored as written; the policy admits exactly the principal serve trusts', () => {
    const built = (
      yaml.loadAll(
        execFileSync(KUBECTL, ['kustomize', 'deploy/clover-cd/overlays/mesh-auth'], {
          cwd: REPO,
          encoding: 'utf8',
        }),
      ) as Obj[]
    ).filter(Boolean);
    const ours = built.filter(
      (d) =>
        ['PeerAuthentication', 'AuthorizationPolicy', 'Deployment'].includes(d.kind) &&
        d.metadata.namespace === 'clover-system' &&
        d.metadata.name.startsWith('clover-cd'),
    );
    expect(ours.map((d) => d.kind).sort()).toEqual([
      'AuthorizationPolicy',
      'Deployment',
      'PeerAuthentication',
    ]);
    kubectl(['create', 'namespace', ns]);
    const moved: Obj[] = ours.map((d) => ({ ...d, metadata: { ...d.metadata, namespace: ns } }));
    const text = moved.map((d) => yaml.dump(d)).join('---\n');
    kubectl(['apply', '--dry-run=server', '-f', '-'], text);
    kubectl(['apply', '-f', '-'], text);
    for (const d of moved.filter((x) => x.kind !== 'Deployment')) {
      const stored = JSON.parse(
        kubectl([
          '-n',
          ns,
          'get',
          `${d.kind.toLowerCase()}.security.istio.io`,
          d.metadata.name,
          '-o',
          'json',
        ]),
      );
      expect({ kind: d.kind, spec: stored.spec }).toEqual({ kind: d.kind, spec: d.spec });
    }
    const deployment = JSON.parse(kubectl(['-n', ns, 'get', 'deployment', 'clover-cd', '-o', 'json']));
    const pod = deployment.spec.template;
    expect(pod.metadata.labels['sidecar.istio.io/inject']).toBe('true');
    expect(pod.metadata.annotations['sidecar.istio.io/inject']).toBe('true');
    const trusted = pod.spec.containers[0].env.find(
      (e: Obj) => e.name === 'CLOVER_CD_TRUST_MESH_PRINCIPAL',
    ).value;
    const policy = moved.find((d) => d.kind === 'AuthorizationPolicy')!;
    expect(policy.spec.rules.flatMap((r: Obj) => r.from.flatMap((f: Obj) => f.source.principals))).toEqual([
      trusted.replace(/^spiffe:\/\//, ''),
    ]);
    expect(moved.find((d) => d.kind === 'PeerAuthentication')!.spec.mtls.mode).toBe('STRICT');
  });
});
