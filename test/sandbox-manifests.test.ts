import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Service } from 'kubernetes-models/v1';
import {
  DestinationRule,
  Gateway,
  VirtualService,
} from '@kubernetes-models/istio/networking.istio.io/v1beta1';
import { Telemetry } from '@kubernetes-models/istio/telemetry.istio.io/v1alpha1';
import { MANIFEST_DIR } from '../src/sandbox/index.js';
import { routeRequest } from '../src/sandbox/routing.js';
import type { KubeObject } from '../src/services/platform.js';

const docs = readdirSync(MANIFEST_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) =>
    (yaml.loadAll(readFileSync(`${MANIFEST_DIR}/${f}`, 'utf8')) as KubeObject[]).filter(Boolean),
  );
const MODELS: Record<string, new (d: never) => { validate(): void }> = {
  Deployment: Deployment as never,
  Service: Service as never,
  VirtualService: VirtualService as never,
  DestinationRule: DestinationRule as never,
  Gateway: Gateway as never,
  Telemetry: Telemetry as never,
};

describe('deploy/sdc cluster manifests', () => {
  it('validate against the Kubernetes and Istio schemas', () => {
    expect(docs.length).toBeGreaterThan(20);
    for (const d of docs) {
      const Model = MODELS[d.kind];
      expect(Model).toBeDefined();
      expect(() => new Model(d as never).validate()).not.toThrow();
    }
  });

  it('the schema check catches a broken object', () => {
    const bad = structuredClone(docs.find((d) => d.kind === 'VirtualService')!);
    (bad.spec as { http: Array<{ route: Array<{ weight: unknown }> }> }).http[0].route[0].weight = 'ninety';
    expect(() => new VirtualService(bad as never).validate()).toThrow();
  });

  it('labels every Deployment with app and version, and names every Service port', () => {
    for (const d of docs.filter((x) => x.kind === 'Deployment' && x.metadata.name !== 'redis')) {
      const labels = (d.spec as { template: { metadata: { labels: Record<string, string> } } }).template
        .metadata.labels;
      expect(labels).toEqual(
        expect.objectContaining({ app: expect.any(String), version: expect.stringMatching(/^v\d+$/) }),
      );
    }
    for (const s of docs.filter((x) => x.kind === 'Service')) {
      for (const p of (s.spec as { ports: Array<{ name?: string }> }).ports)
        expect(p.name).toMatch(/^(http|grpc|redis|proxy-access-control)/);
    }
    const dr = docs.find((d) => d.kind === 'DestinationRule' && d.metadata.name === 'http-lb')!;
    expect((dr.spec as { subsets: Array<{ name: string }> }).subsets.map((s) => s.name)).toEqual([
      'v1',
      'v2',
    ]);
  });

  it('routes http-lb 100% to v1 and the gateway to proxy-access-control', () => {
    const vss = docs.filter((d) => d.kind === 'VirtualService');
    const req = { path: '/', method: 'GET', headers: {} };
    for (let i = 0; i < 50; i++)
      expect(routeRequest(vss, 'http-lb', req)!.destination).toEqual({
        service: 'http-lb',
        subset: 'v1',
        port: 9180,
      });
    expect(routeRequest(vss, '127.0.0.1', req, { gateways: ['sdc-gateway'] })!.destination.service).toBe(
      'proxy-access-control',
    );
    expect(routeRequest(vss, 'proxy-access-control', req)).toBeUndefined(); // gateway-bound VS does not apply to sidecars
  });
});
