import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConflictError, type ObjectRef } from '../services/platform.js';
import { InvalidInputError } from '../util/errors.js';
import { registerSecret } from '../util/redact.js';
import { closeServer, type Fault } from './mesh.js';
import { listen, type SandboxCore } from './sandbox.js';

/**
 * The admin HTTP API of a sandbox (what `connectSandbox` and the CLI use to drive a detached sandbox):
 * objects (apply/get/patch/delete/list), workload status, fault knobs, status and shutdown. Bearer token
 * from the state file; loopback only.
 */
export interface ControlServer {
  stop(): Promise<void>;
}

export interface AdminOptions {
  token?: string;
  onShutdown?: () => void;
}

const MAX_BODY = 16 * 1024 * 1024;

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy(new Error('request body too large'));
      else chunks.push(c);
    });
    req.on('end', () => {
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve(text ? (JSON.parse(text) as Record<string, unknown>) : {});
      } catch {
        reject(new InvalidInputError('request body is not valid JSON'));
      }
    });
    req.on('error', reject);
  });
}

export function checkFault(f: unknown): Fault | null {
  if (f === null || f === undefined) return null;
  const x = f as Fault;
  const problems: string[] = [];
  for (const k of ['errorRate', 'resetRate'] as const) {
    if (x[k] !== undefined && (typeof x[k] !== 'number' || x[k]! < 0 || x[k]! > 1))
      problems.push(`${k} must be a number 0..1, found ${JSON.stringify(x[k])}`);
  }
  if (x.delayMs !== undefined && (typeof x.delayMs !== 'number' || x.delayMs < 0 || x.delayMs > 600_000))
    problems.push(`delayMs must be 0..600000, found ${JSON.stringify(x.delayMs)}`);
  if (
    x.abortStatus !== undefined &&
    (!Number.isInteger(x.abortStatus) || x.abortStatus < 200 || x.abortStatus > 599)
  )
    problems.push(`abortStatus must be an HTTP status 200..599, found ${JSON.stringify(x.abortStatus)}`);
  if (problems.length)
    throw new InvalidInputError(
      'invalid fault',
      problems.map((message) => ({ path: 'fault', message })),
    );
  return { errorRate: x.errorRate, abortStatus: x.abortStatus, delayMs: x.delayMs, resetRate: x.resetRate };
}

export function sandboxStatus(core: SandboxCore) {
  return {
    urls: core.urls,
    pid: process.pid,
    netns: Boolean(core.netns),
    workloads: [...core.mesh.instances.values()].map((i) => {
      const pod = core.netns?.pods.get(i.name);
      return {
        name: i.name,
        workload: i.name,
        app: i.app,
        service: i.app,
        version: i.version,
        namespace: i.namespace,
        address: pod ? `${pod.podIp}:${pod.port}` : `${i.host}:${i.port}`,
        fault: i.fault ?? null,
        // --netns: what an eBPF tracer attaches to (the host-side veth looks like a pod veth)
        ...(pod
          ? {
              netnsName: pod.netnsName,
              netns: pod.netns,
              hostVeth: pod.hostVeth,
              podIp: pod.podIp,
              port: pod.port,
            }
          : {}),
      };
    }),
    faults: core.mesh.faultList(),
    spans: core.traces.size,
    idsAlerts: core.ids.alerts.length,
  };
}

export async function startAdminServer(
  core: SandboxCore,
  opts: AdminOptions = {},
): Promise<ControlServer & { url: string; token: string }> {
  const token = opts.token ?? randomBytes(24).toString('hex');
  registerSecret(token);
  const expected = Buffer.from(`Bearer ${token}`);
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res
        .writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
        .end(text);
    };
    const auth = Buffer.from(req.headers.authorization ?? '');
    if (auth.length !== expected.length || !timingSafeEqual(auth, expected))
      return send(401, { error: 'missing or wrong bearer token (see the sandbox state file)' });
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (req.method === 'GET' && path === '/v1/status') return send(200, sandboxStatus(core));
      if (req.method === 'GET' && path.startsWith('/v1/workloads/')) {
        const [ns, name] = path.slice('/v1/workloads/'.length).split('/').map(decodeURIComponent);
        return send(200, await core.platform.workloadStatus(ns, name));
      }
      if (req.method === 'POST' && path === '/v1/shutdown') {
        send(202, { stopping: true });
        setImmediate(() => (opts.onShutdown ?? core.onShutdown)?.());
        return;
      }
      const body = await readJson(req);
      const ref = body.ref as ObjectRef;
      switch (`${req.method} ${path}`) {
        case 'POST /v1/objects/apply':
          return send(200, { objects: await core.platform.apply(body.objects as never) });
        case 'POST /v1/objects/get':
          return send(200, { object: (await core.platform.get(ref)) ?? null });
        case 'POST /v1/objects/patch':
          return send(200, {
            object: await core.platform.patch(ref, body.patch as Record<string, unknown>, {
              resourceVersion: body.resourceVersion as string | undefined,
            }),
          });
        case 'POST /v1/objects/delete':
          return send(200, { deleted: await core.platform.delete(ref) });
        case 'POST /v1/objects/list':
          return send(200, {
            objects: await core.platform.list(
              String(body.apiVersion),
              String(body.kind),
              String(body.namespace ?? 'default'),
              body.labelSelector as string | undefined,
            ),
          });
        case 'PUT /v1/faults': {
          const affected = core.setFault(
            String(body.workload),
            (body.version as string | undefined) ?? undefined,
            checkFault(body.fault),
          );
          return send(200, { affected, faults: core.mesh.faultList() });
        }
        default:
          return send(404, { error: `no such admin endpoint: ${req.method} ${path}` });
      }
    } catch (err) {
      if (err instanceof ConflictError)
        return send(409, { error: err.message, currentResourceVersion: err.currentResourceVersion });
      if (err instanceof InvalidInputError) return send(400, { error: err.message, problems: err.problems });
      return send(500, { error: (err as Error).message });
    }
  };
  const server = createServer((req, res) => void handle(req, res));
  await listen(server, core.host);
  const url = `http://${core.host}:${(server.address() as AddressInfo).port}`;
  return { url, token, stop: () => closeServer(server) };
}

/** Servers every sandbox runs next to the mesh: the admin API and the gRPC control API. */
export async function startControlServers(
  core: SandboxCore,
  opts: AdminOptions = {},
): Promise<ControlServer[]> {
  const admin = await startAdminServer(core, opts);
  core.urls.admin = admin.url;
  core.adminToken = admin.token;
  const servers: ControlServer[] = [admin];
  try {
    const { startGrpcServer } = await import('./grpc.js');
    const grpc = await startGrpcServer(core);
    core.urls.grpc = grpc.address;
    servers.push(grpc);
  } catch (err) {
    await admin.stop();
    throw err;
  }
  return servers;
}
