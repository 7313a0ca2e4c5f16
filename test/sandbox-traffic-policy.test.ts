import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startSandbox, type Sandbox } from '../src/sandbox/index.js';
import { hostSpecificity } from '../src/sandbox/routing.js';
import type { KubeObject } from '../src/services/platform.js';
import { diff, scrape, sendRequests } from './helpers/sandbox-load.js';

/** Istio semantics the SDC seeds rely on: Host-based virtual hosts at the gateway, outlier detection, connection pools. */
let sb: Sandbox;
beforeAll(async () => {
  sb = await startSandbox();
});
afterAll(async () => {
  await sb?.stop();
});

const ISTIO = 'networking.istio.io/v1beta1';
const ref = (kind: string, name: string) => ({ apiVersion: ISTIO, kind, namespace: 'default', name });
const served = (bodies: Map<string, number>) => Object.fromEntries([...bodies].sort());
const byWorkload = (where: Record<string, string>) =>
  scrape(
    sb.urls.metrics,
    'istio_requests_total',
    { reporter: 'destination', ...where },
    'destination_workload',
  );

describe('Host header at the ingress', () => {
  const directServer: KubeObject = {
    apiVersion: ISTIO,
    kind: 'VirtualService',
    metadata: { name: 'directserver', namespace: 'default' },
    spec: {
      hosts: ['www.sdc.com'],
      gateways: ['sdc-gateway'],
      http: [{ route: [{ destination: { host: 'clover-server4', port: { number: 9180 } } }] }],
    },
  };
  afterAll(async () => {
    await sb.platform.delete(ref('VirtualService', 'directserver'));
  });

  it('a VirtualService for www.sdc.com takes only requests with that Host; others keep the * route', async () => {
    await sb.platform.apply([directServer]);
    const direct = await sendRequests(`${sb.urls.ingress}/`, 12, {
      headers: { host: 'www.sdc.com' },
      concurrency: 4,
    });
    expect(direct.codes).toEqual({ 200: 12 });
    expect(served(direct.bodies)).toEqual({ 'clover-server4': 12 });
    const withPort = await sendRequests(`${sb.urls.ingress}/`, 3, { headers: { host: 'WWW.SDC.COM:80' } });
    expect(served(withPort.bodies)).toEqual({ 'clover-server4': 3 });
    // Any other Host goes through proxy-access-control → http-lb v1 → clover-server1..3, never to server4.
    const other = await sendRequests(`${sb.urls.ingress}/`, 12, {
      headers: { host: 'sdc.com' },
      concurrency: 4,
    });
    expect(other.codes).toEqual({ 200: 12 });
    expect(served(other.bodies)).toEqual({ 'clover-server1': 4, 'clover-server2': 4, 'clover-server3': 4 });
    // Deleting the object restores the previous routing for that Host.
    expect(await sb.platform.delete(ref('VirtualService', 'directserver'))).toBe(true);
    const after = await sendRequests(`${sb.urls.ingress}/`, 3, { headers: { host: 'www.sdc.com' } });
    expect(Object.keys(served(after.bodies)).every((k) => /^clover-server[123]$/.test(k))).toBe(true);
  });

  it('a Gateway that does not admit the Host answers 404 (NR)', async () => {
    await sb.platform.apply([
      {
        apiVersion: ISTIO,
        kind: 'Gateway',
        metadata: { name: 'sdc-gateway', namespace: 'default' },
        spec: {
          selector: { istio: 'ingressgateway' },
          servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*.sdc.com'] }],
        },
      },
    ]);
    try {
      expect(
        (await sendRequests(`${sb.urls.ingress}/`, 2, { headers: { host: 'example.org' } })).codes,
      ).toEqual({ 404: 2 });
      expect(
        (await sendRequests(`${sb.urls.ingress}/`, 2, { headers: { host: 'shop.sdc.com' } })).codes,
      ).toEqual({ 200: 2 });
    } finally {
      await sb.platform.apply([
        {
          apiVersion: ISTIO,
          kind: 'Gateway',
          metadata: { name: 'sdc-gateway', namespace: 'default' },
          spec: {
            selector: { istio: 'ingressgateway' },
            servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
          },
        },
      ]);
    }
  });

  it('host specificity: exact name > *.suffix > *; service forms compare by short name', () => {
    expect(hostSpecificity('www.sdc.com', 'www.sdc.com')).toBeGreaterThan(
      hostSpecificity('*.sdc.com', 'www.sdc.com'),
    );
    expect(hostSpecificity('*.sdc.com', 'www.sdc.com')).toBeGreaterThan(hostSpecificity('*', 'www.sdc.com'));
    expect(hostSpecificity('www.sdc.com', 'www')).toBe(-1); // a domain never names the mesh service "www"
    expect(hostSpecificity('http-lb.default.svc.cluster.local', 'http-lb')).toBeGreaterThan(0);
    expect(hostSpecificity('*.sdc.com', 'http-lb')).toBe(-1);
  });
});

describe('DestinationRule trafficPolicy', () => {
  // http-lb over both versions (no subset), so the cluster has two endpoints to balance over.
  const vsBoth: KubeObject = {
    apiVersion: ISTIO,
    kind: 'VirtualService',
    metadata: { name: 'http-lb', namespace: 'default' },
    spec: {
      hosts: ['http-lb'],
      http: [{ route: [{ destination: { host: 'http-lb', port: { number: 9180 } } }] }],
    },
  };
  const dr = (trafficPolicy: unknown): KubeObject => ({
    apiVersion: ISTIO,
    kind: 'DestinationRule',
    metadata: { name: 'http-lb', namespace: 'default' },
    spec: {
      host: 'http-lb',
      trafficPolicy,
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    },
  });
  let original: KubeObject[];
  beforeAll(async () => {
    original = (await Promise.all([
      sb.platform.get(ref('VirtualService', 'http-lb')),
      sb.platform.get(ref('DestinationRule', 'http-lb')),
    ])) as KubeObject[];
  });
  afterAll(async () => {
    await sb.setFault('http-lb', undefined, null);
    await sb.setFault('http-lb', 'v2', null);
    await sb.platform.apply(
      original.map((o) => ({ ...o, metadata: { name: o.metadata.name, namespace: 'default' } })),
    );
  });

  it('outlier detection ejects the failing endpoint: after 3 consecutive 5xx it gets no more traffic', async () => {
    await sb.platform.apply([
      vsBoth,
      dr({
        outlierDetection: {
          consecutive5xxErrors: 3,
          interval: '1s',
          baseEjectionTime: '5m',
          maxEjectionPercent: 100,
        },
      }),
    ]);
    await sb.setFault('http-lb', 'v2', { errorRate: 1, abortStatus: 500 });
    const before = await byWorkload({ destination_service_name: 'http-lb' });
    const r = await sendRequests(`${sb.urls.ingress}/`, 40, { concurrency: 1 });
    const seen = diff(await byWorkload({ destination_service_name: 'http-lb' }), before);
    // Round robin alternates v1/v2 until v2's third 500; from then on v1 takes everything.
    expect(seen).toEqual({ 'http-lb-v1': 37, 'http-lb-v2': 3 });
    expect(r.codes).toEqual({ 200: 37, 500: 3 });
    expect(sb.core.mesh.clusters.get('http-lb|')?.ejections).toBe(1);
  });

  it('maxEjectionPercent keeps endpoints in: with 10% of two endpoints nothing more is ejected once one is out', async () => {
    await sb.platform.apply([
      dr({ outlierDetection: { consecutive5xxErrors: 1, baseEjectionTime: '5m', maxEjectionPercent: 10 } }),
    ]);
    sb.core.mesh.clusters.delete('http-lb|');
    await sb.setFault('http-lb', 'v2', null);
    await sb.setFault('http-lb', undefined, { errorRate: 1, abortStatus: 503 });
    await sendRequests(`${sb.urls.ingress}/`, 10, { concurrency: 1 });
    expect(sb.core.mesh.clusters.get('http-lb|')?.ejections).toBe(1);
    await sb.setFault('http-lb', undefined, null);
  });

  it('connection pool: beyond maxConnections + http1MaxPendingRequests requests are answered 503 UO', async () => {
    sb.core.mesh.clusters.delete('http-lb|');
    await sb.platform.apply([
      dr({ connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } } }),
    ]);
    await sb.setFault('http-lb', undefined, { delayMs: 300 });
    const flags = () =>
      scrape(
        sb.urls.metrics,
        'istio_requests_total',
        { reporter: 'source', destination_service_name: 'http-lb' },
        'response_flags',
      );
    const before = await flags();
    const r = await sendRequests(`${sb.urls.ingress}/`, 6, { concurrency: 6 });
    // one in flight, one waiting: those two are answered; the other four overflow at once.
    expect(r.codes).toEqual({ 200: 2, 503: 4 });
    expect(diff(await flags(), before)).toEqual({ '-': 2, UO: 4 });
    await sb.setFault('http-lb', undefined, null);
  });
});
