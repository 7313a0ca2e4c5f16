import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatProblem, type InputProblem } from '../../util/errors.js';
import { redact } from '../../util/redact.js';
import { checkAuth, type AuthConfig } from './auth.js';
import { CLOVER_PATHS, type CloverRoutes } from './clover-routes.js';
import type { JobManager } from './jobs.js';
import { parseStartRequest } from './request.js';
import { publicJob } from './types.js';

/**
 * The HTTP stage server (contract [E]) on node:http: the API is a handful of routes, so a framework
 * would add weight without removing code. Body size is capped (413), every route but /healthz is
 * authenticated, errors are JSON with the field path.
 */
export interface StageServerOptions {
  jobs: JobManager;
  auth: AuthConfig;
  /** Largest accepted request body (default 1 MiB). */
  maxBodyBytes?: number;
  /** Resolves relative paths inside specs (load plans). */
  baseDir?: string;
  /** Clover controller routes (/visibility/..., /jmeter/...). */
  clover?: CloverRoutes;
  /** Serve Clover's routes without authentication, as Clover's controller did (trusted networks only). */
  cloverRoutesOpen?: boolean;
  /** Public base URL for statusUrl (default: from the request's Host header). */
  publicUrl?: string;
  log?: (line: string) => void;
}

export interface RunningStageServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function sendJson(res: ServerResponse, status: number, json: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json), 'cache-control': 'no-store' });
  res.end(json);
}

const serialized = new WeakMap<object, string>();

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.reject(new HttpError(413, `request body of ${declared} bytes is over the limit of ${limit} bytes`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new HttpError(413, `request body is over the limit of ${limit} bytes`));
        req.pause();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message}`, { problems: [{ path: '', message: 'expected a JSON object' }] });
  }
}

const problemsBody = (problems: InputProblem[]) => ({
  error: `invalid request: ${problems.map(formatProblem).join('; ')}`,
  problems: problems.map((p) => ({ path: p.path, message: p.message })),
});

export function startStageServer(opts: StageServerOptions & { port?: number; host?: string }): Promise<RunningStageServer> {
  const limit = opts.maxBodyBytes ?? 1024 * 1024;
  const log = opts.log ?? (() => undefined);
  const { jobs } = opts;

  const baseUrl = (req: IncomingMessage) => (opts.publicUrl ?? `http://${req.headers.host ?? 'localhost'}`).replace(/\/$/, '');

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/healthz' || path === '/test') {
      return send(res, 200, { status: 'ok', store: jobs.store.kind, activeJobs: jobs.activeCount });
    }
    const raw = await readBody(req, limit);
    const isClover = CLOVER_PATHS.test(path);
    if (!(isClover && opts.cloverRoutesOpen)) {
      const auth = checkAuth(opts.auth, req.headers, raw);
      if (!auth.ok) {
        log(`${method} ${path} → ${auth.status} (${auth.message})`);
        return send(res, auth.status, { error: auth.message }, auth.status === 401 ? { 'www-authenticate': 'Bearer realm="clover-cd"' } : {});
      }
    }

    let m: RegExpExecArray | null;
    if ((m = /^\/api\/v1\/releases\/([^/]+)\/cancel$/.exec(path))) {
      if (method !== 'POST') throw new HttpError(405, 'use POST', {});
      const release = decodeURIComponent(m[1]);
      const job = await jobs.cancel(release);
      if (!job) return send(res, 404, { error: `release "${release}" has no active job`, release });
      return send(res, 202, { ...publicJob(job), cancelRequested: true });
    }
    if ((m = /^\/api\/v1\/releases\/([^/]+)\/([^/]+)$/.exec(path))) {
      if (method !== 'POST') throw new HttpError(405, 'use POST');
      const [release, action] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
      const parsed = parseStartRequest(release, action, parseJson(raw), opts.baseDir ?? process.cwd());
      if (!parsed.ok) return send(res, 400, problemsBody(parsed.problems));
      const r = await jobs.submit(release, action as never, parsed.value.spec, parsed.value.params);
      if ('conflict' in r) {
        return send(res, 409, {
          error: `release "${release}" already has an active job (${r.conflict}); wait for it or cancel it`,
          activeJobId: r.conflict,
          statusUrl: `${baseUrl(req)}/api/v1/jobs/${r.conflict}`,
        });
      }
      const statusUrl = `${baseUrl(req)}/api/v1/jobs/${r.job.id}`;
      log(`${method} ${path} → 202 job ${r.job.id}`);
      return send(res, 202, { id: r.job.id, release, action, status: r.job.status, progress: r.job.progress, statusUrl }, { location: statusUrl });
    }
    if ((m = /^\/api\/v1\/jobs\/([^/]+)$/.exec(path))) {
      if (method !== 'GET') throw new HttpError(405, 'use GET');
      const job = await jobs.get(decodeURIComponent(m[1]));
      if (!job) return send(res, 404, { error: `no job ${m[1]} (finished jobs are kept for a limited time)` });
      // Job objects are replaced on every change, so the serialized body can be cached per object.
      let body = serialized.get(job);
      if (!body) serialized.set(job, (body = JSON.stringify(publicJob(job))));
      return sendJson(res, 200, body);
    }
    if (isClover && opts.clover) {
      const out = await opts.clover.handle(method, path, parseJsonLoose(raw));
      if (out) return send(res, out.status, out.body);
    }
    throw new HttpError(404, `no route ${method} ${path}`);
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      if (err instanceof HttpError) {
        const headers: Record<string, string> = err.status === 413 ? { connection: 'close' } : {};
        send(res, err.status, { error: err.message, ...err.extra }, headers);
        return;
      }
      // Store outage (Redis down) or a bug: 503 makes Orca retry the poll instead of failing the stage.
      const message = redact((err as Error)?.message ?? String(err));
      log(`${req.method} ${req.url} → 503 (${message})`);
      send(res, 503, { error: `temporarily unavailable: ${message}` }, { 'retry-after': '1' });
    });
  });
  server.keepAliveTimeout = 65_000;

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, opts.host ?? '0.0.0.0', () => {
      const { port } = server.address() as AddressInfo;
      const host = opts.host && opts.host !== '0.0.0.0' ? opts.host : '127.0.0.1';
      resolve({
        url: `http://${host}:${port}`,
        port,
        server,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}

function parseJsonLoose(raw: Buffer): unknown {
  if (!raw.length) return undefined;
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HttpError(400, 'Invalid value in json/yaml');
  }
}
