/**
 * Where targets come from: clovisor's own config file, Clovisor's Redis keys, pods through the Kubernetes API
 * (netns and host veth found through /proc and iflink, never `kubectl exec`), and the sandbox's --netns workloads.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Platform, KubeObject } from '../services/platform.js';
import { readYamlFile } from '../spec/load.js';
import { InvalidInputError, type InputProblem } from '../util/errors.js';
import { validateAgainst } from '../util/schema.js';
import type { EgressMatch, Target } from './types.js';

export interface ClovisorConfig {
  pinRoot?: string;
  /** OTLP/HTTP base URL for session spans (Jaeger collector :4318, or the sandbox trace store). */
  spans?: { url: string; format?: 'otlp' | 'jaeger-thrift'; release?: string; step?: string };
  /** host:port of the tracer's HTTP endpoint (/metrics, /api/v1/evidence, /api/v1/status). */
  listen?: string;
  drainInterval?: string;
  redis?: { url: string };
  /** Pods to trace, selected as Clovisor does (`<namespace>[:<label-key>:<label-value>]`). */
  kubernetes?: { labels: string[]; versionLabel?: string; packetTier?: boolean };
  /** Clovisor's `clovisor_egress_match` entries (`<ip|0>:<port>[/<protocol>][:<pod-prefix>]`), added to Redis's. */
  egressMatch?: string[];
  targets?: Target[];
}

const targetSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['workload', 'version', 'netns'],
  properties: {
    workload: { type: 'string', minLength: 1 },
    version: { type: 'string', minLength: 1 },
    namespace: { type: 'string' },
    service: { type: 'string' },
    pod: { type: 'string' },
    netns: { type: 'string', minLength: 1 },
    hostVeth: { type: 'string' },
    hostNetns: { type: 'string' },
    packetTier: { type: 'boolean' },
  },
};
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    pinRoot: { type: 'string', pattern: '^/sys/fs/bpf/' },
    spans: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', pattern: '^https?://' },
        format: { enum: ['otlp', 'jaeger-thrift'] },
        release: { type: 'string' },
        step: { type: 'string' },
      },
    },
    listen: { type: 'string', pattern: '^[^:]+:\\d+$' },
    drainInterval: { type: 'string', pattern: '^\\d+(\\.\\d+)?(ms|s|m)$' },
    redis: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: { url: { type: 'string', pattern: '^rediss?://' } },
    },
    kubernetes: {
      type: 'object',
      additionalProperties: false,
      required: ['labels'],
      properties: {
        labels: { type: 'array', items: { type: 'string' } },
        versionLabel: { type: 'string' },
        packetTier: { type: 'boolean' },
      },
    },
    egressMatch: { type: 'array', items: { type: 'string', pattern: '^[^:]+:\\d+(/[a-zA-Z0-9]+)?(:.+)?$' } },
    targets: { type: 'array', items: targetSchema },
  },
};

export function loadClovisorConfig(file: string): ClovisorConfig {
  const doc = readYamlFile(file) as ClovisorConfig;
  const problems: InputProblem[] = validateAgainst(configSchema, doc, file, '');
  if (problems.length) throw new InvalidInputError(`${file}: invalid clovisor config`, problems);
  for (const t of doc.targets ?? []) t.namespace ??= 'default';
  return doc;
}

/** `clovisor_labels` entries: `<namespace>[:<label-key>:<label-value>]`; an empty list means namespace default. */
export function parseClovisorLabels(entries: string[]): Array<{ namespace: string; labelSelector?: string }> {
  if (!entries.length) return [{ namespace: 'default' }];
  return entries.map((e) => {
    const [namespace, key, value] = e.split(':');
    return key && value !== undefined
      ? { namespace: namespace || 'default', labelSelector: `${key}=${value}` }
      : { namespace: namespace || 'default' };
  });
}

/**
 * `clovisor_egress_match` entries: `<ip or 0>:<port>[/<protocol>][:<pod-name-prefix>]` (the prefix selects the pods
 * the entry restricts). Entries that are not an IPv4 address (or 0) and a port are dropped.
 */
export function parseEgressMatch(entries: string[]): EgressMatch[] {
  return entries.flatMap((e) => {
    const [ip, portProto, podPrefix] = e.trim().split(':');
    const [port, protocol] = (portProto ?? '').split('/');
    const p = Number(port);
    const addr = ip === '0' || ip === '' ? '0.0.0.0' : ip;
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(addr) || !Number.isInteger(p) || p <= 0 || p >= 65536) return [];
    return [
      {
        ip: addr,
        port: p,
        ...(protocol ? { protocol: protocol.toLowerCase() } : {}),
        ...(podPrefix ? { podPrefix } : {}),
      },
    ];
  });
}

const TCP_PROTOCOLS = new Set(['tcp', 'http', 'http2', 'grpc']);
/** The entries that concern TCP (clovisor traces TCP only): no protocol, or tcp / http / http2 / grpc. */
export function tcpEgress(egress: EgressMatch[]): EgressMatch[] {
  return egress.filter((e) => !e.protocol || TCP_PROTOCOLS.has(e.protocol));
}

/** `egress_match` keys: an entry without pod prefix applies in every namespace (netns 0); with one, in its targets'. */
export function egressKeys(
  egress: EgressMatch[],
  targets: Target[],
): Array<{ netns: number; ip: string; port: number }> {
  return egress.flatMap((e) =>
    (e.podPrefix
      ? targets
          .filter((t) => (t.pod ?? t.workload).startsWith(e.podPrefix!) && t.netnsInum)
          .map((t) => t.netnsInum!)
      : [0]
    ).map((netns) => ({ netns, ip: e.ip, port: e.port })),
  );
}

/** Whether a target's outbound connection to addr:port is traced under `egress` (an empty list traces all). */
export function egressAllowed(
  egress: EgressMatch[],
  t: Pick<Target, 'workload' | 'pod'> | undefined,
  addr: string,
  port: number,
): boolean {
  if (!egress.length) return true;
  return egress.some(
    (e) =>
      e.port === port &&
      (e.ip === '0.0.0.0' || e.ip === addr) &&
      (!e.podPrefix || (t?.pod ?? t?.workload ?? '').startsWith(e.podPrefix)),
  );
}

export interface RedisClovisorConfig {
  labels: Array<{ namespace: string; labelSelector?: string }>;
  egress: EgressMatch[];
  jaeger: { collector?: string; agent?: string; server?: string };
}

/** Reads Clovisor's keys, including the misspelt `clovior_egress_match` that Clovisor itself reads. */
export async function readRedisConfig(url: string): Promise<RedisClovisorConfig> {
  const { Redis } = await import('ioredis');
  const { withRetry } = await import('../util/retry.js');
  const { InfrastructureError } = await import('../util/errors.js');
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 3000,
    retryStrategy: () => null,
  });
  try {
    return await withRetry(
      async () => {
        if (client.status !== 'ready') await client.connect();
        const [labels, egress, egressTypo, collector, agent, server] = await Promise.all([
          client.lrange('clovisor_labels', 0, -1),
          client.lrange('clovisor_egress_match', 0, -1),
          client.lrange('clovior_egress_match', 0, -1),
          client.get('clovisor_jaeger_collector'),
          client.get('clovisor_jaeger_agent'),
          client.get('clovisor_jaeger_server'),
        ]);
        return {
          labels: parseClovisorLabels(labels),
          egress: parseEgressMatch([...egress, ...egressTypo]),
          jaeger: {
            collector: collector ?? undefined,
            agent: agent ?? undefined,
            server: server ?? undefined,
          },
        };
      },
      { attempts: 3 },
    ).catch((e: unknown) => {
      throw new InfrastructureError(
        'Redis',
        url.replace(/\/\/[^@]*@/, '//***@'),
        e instanceof Error ? e.message : String(e),
        'the Redis that holds clovisor_labels is reachable',
      );
    });
  } finally {
    client.disconnect();
  }
}

/** The span endpoint from `clovisor_jaeger_collector` ("host:port" or a URL): OTLP/HTTP on port 4318 of that host. */
export function spansUrlFromJaegerKey(collector: string | undefined): string | undefined {
  if (!collector) return undefined;
  const u = new URL(/^https?:\/\//.test(collector) ? collector : `http://${collector}`);
  return `${u.protocol}//${u.hostname}:4318`;
}

/** The network namespace of a pod: a process whose cgroup path names the pod UID (containerd/CRI-O/docker alike). */
export function podNetns(podUid: string, procRoot = '/proc'): string | undefined {
  const uid = podUid.replace(/-/g, '_');
  for (const pid of readdirSync(procRoot).filter((p) => /^\d+$/.test(p))) {
    try {
      const cg = readFileSync(join(procRoot, pid, 'cgroup'), 'utf8');
      if (cg.includes(podUid) || cg.includes(uid)) return join(procRoot, pid, 'ns', 'net');
    } catch {
      /* process gone */
    }
  }
  return undefined;
}

/**
 * Pods selected the way Clovisor selects them (Services by label in a namespace, their pods by the Service
 * selector), restricted to this node; netns and host veth are found locally. `nodeName` defaults to MY_NODE_NAME.
 */
export async function kubernetesTargets(
  platform: Platform,
  selection: Array<{ namespace: string; labelSelector?: string }>,
  opts: {
    nodeName?: string;
    versionLabel?: string;
    packetTier?: boolean;
    resolve?: (pod: KubeObject) => Promise<Pick<Target, 'netns' | 'hostVeth'> | undefined>;
  } = {},
): Promise<Target[]> {
  const node = opts.nodeName ?? process.env.MY_NODE_NAME;
  const versionLabel = opts.versionLabel ?? 'version';
  const out: Target[] = [];
  const seen = new Set<string>();
  for (const sel of selection) {
    const services = await platform.list('v1', 'Service', sel.namespace, sel.labelSelector);
    for (const svc of services) {
      if (svc.metadata.name === 'kubernetes') continue;
      const selector = (svc.spec?.selector ?? {}) as Record<string, string>;
      if (!Object.keys(selector).length) continue;
      const pods = await platform.list(
        'v1',
        'Pod',
        sel.namespace,
        Object.entries(selector)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      );
      for (const pod of pods) {
        if (node && (pod.spec as { nodeName?: string } | undefined)?.nodeName !== node) continue;
        const key = `${sel.namespace}/${pod.metadata.name}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const where = await (opts.resolve ?? resolvePodLocally)(pod);
        if (!where) continue;
        const labels = pod.metadata.labels ?? {};
        out.push({
          workload: labels.app ? `${labels.app}-${labels[versionLabel] ?? 'unversioned'}` : pod.metadata.name,
          version: labels[versionLabel] ?? 'unversioned',
          namespace: sel.namespace,
          service: svc.metadata.name,
          pod: pod.metadata.name,
          ...where,
          packetTier: opts.packetTier ?? false,
        });
      }
    }
  }
  return out;
}

/** netns from /proc by pod UID; host veth = the root-namespace interface whose ifindex is the pod eth0's iflink. */
async function resolvePodLocally(pod: KubeObject): Promise<Pick<Target, 'netns' | 'hostVeth'> | undefined> {
  const uid = pod.metadata.uid as string | undefined;
  const netns = uid ? podNetns(uid) : undefined;
  if (!netns) return undefined;
  const pid = netns.split('/')[2];
  let hostVeth: string | undefined;
  try {
    const iflink = Number(readFileSync(`/proc/${pid}/root/sys/class/net/eth0/iflink`, 'utf8').trim());
    for (const dev of readdirSync('/sys/class/net')) {
      if (Number(readFileSync(`/sys/class/net/${dev}/ifindex`, 'utf8').trim()) === iflink) hostVeth = dev;
    }
  } catch {
    /* no eth0 visible: socket tier only */
  }
  return { netns, hostVeth };
}

/**
 * Workloads of a sandbox started with `--netns`: read from its state file (`<stateDir>/sandbox.json`), which lists
 * per workload its namespace and host link. Returns [] when the sandbox runs without --netns.
 */
export function sandboxTargets(stateDir = process.env.CLOVER_CD_STATE_DIR ?? './.clover-cd'): Target[] {
  const file = join(stateDir, 'sandbox.json');
  if (!existsSync(file)) return [];
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { workloads?: Array<Record<string, unknown>> };
  return (doc.workloads ?? []).flatMap((w) => {
    const netns = (w.netns ?? w.netnsPath) as string | undefined;
    if (!netns) return [];
    const workload = String(w.workload ?? w.name);
    return [
      {
        workload,
        version: String(w.version ?? 'v1'),
        namespace: String(w.namespace ?? 'default'),
        service: (w.service as string | undefined) ?? workload.replace(/-v\d+$/, ''),
        netns: netns.includes('/') ? netns : `/var/run/netns/${netns}`,
        hostVeth: (w.hostVeth ?? w.hostLink) as string | undefined,
        hostNetns: w.hostNetns as string | undefined,
      },
    ];
  });
}

/**
 * Where spans go from `clovisor_jaeger_collector` ("host:port" or a URL), in the chosen format: jaeger-thrift
 * (Clovisor's own: `/api/traces` on the given port, 14268 by default) or otlp (port 4318 of that host).
 */
export function spansFromJaegerKey(
  collector: string | undefined,
  format: 'otlp' | 'jaeger-thrift' = 'jaeger-thrift',
): { url: string; format: 'otlp' | 'jaeger-thrift' } | undefined {
  if (!collector) return undefined;
  if (format === 'otlp') return { url: spansUrlFromJaegerKey(collector)!, format };
  const u = new URL(/^https?:\/\//.test(collector) ? collector : `http://${collector}`);
  return { url: `${u.protocol}//${u.hostname}:${u.port || '14268'}`, format };
}
