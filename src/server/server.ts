import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { formatProblem, type InputProblem } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { checkHeaders, checkSignature, type AuthConfig, type AuthResult } from './auth.js';
import { CLOVER_PATHS, type CloverRoutes } from './clover-routes.js';
import type { ContentDir } from './content.js';
import {
  answerClientError,
  badRequest,
  decodeSegment,
  HttpError,
  parseJsonBody,
  readBody,
  send,
} from './http-util.js';
import type { JobManager } from './jobs.js';
import { jsonLogger, type LogLevel } from './logger.js';
import type { ServerMetrics } from './metrics.js';
import { parseStartRequest } from './request.js';
import { StoreUnavailableError } from './store.js';
import { publicJob, type StageAction } from './types.js';
import type { Ui } from './ui.js';

/**
 * The HTTP stage server on node:http: the API is a handful of routes, so a framework
 * would add weight without removing code. Credentials are checked from the headers before any body byte
 * is read; bodies, headers and JSON nesting are bounded in size and time; every client error is a 4xx
 * naming the field, 503 means the job store is unreachable, 500 a bug. Logs are JSON lines with a
 * request id (`x-request-id`, echoed or generated).
 */
export interface ServerLimits {
  /** Largest accepted request body (default 1 MiB). */
  maxBodyBytes?: number;
  /** Time to receive a body once the headers are in (default 10 s; then 408 and the connection is closed). */
  bodyTimeoutMs?: number;
  /** Time to receive the headers (default 10 s). */
  headersTimeoutMs?: number;
  /** Time to receive a whole request (default 30 s). */
  requestTimeoutMs?: number;
  /** Largest header block (default 16 KiB; 431 over it). */
  maxHeaderBytes?: number;
  /** Deepest JSON nesting accepted (default 64). */
  maxJsonDepth?: number;
}

export interface StageServerOptions extends ServerLimits {
  jobs: JobManager;
  auth: AuthConfig;
  /** The directory specs may name plans and manifests from; without it, documents come inline only. */
  content?: ContentDir;
  /** Clover controller routes (/visibility/..., /jmeter/...). */
  clover?: CloverRoutes;
  /** Serve Clover's routes without authentication, as Clover's controller did (trusted networks only). */
  cloverRoutesOpen?: boolean;
  /** Public base URL for statusUrl (default: from the request's Host header). */
  publicUrl?: string;
  /** Receives JSON log lines. */
  log?: (line: string) => void;
  metrics?: ServerMetrics;
  /** The dashboard under /ui (`ui.ts`); it checks its own credentials (API token, read-only token, session cookie). */
  ui?: Ui;
  /** What a start request needs from the release's recorded state (`stageAdmission`): problems are a 400 instead of a 202. */
  admit?: StageAdmission;
}

import type { StageAdmission } from '../stages/action-types.js';
export type { StageAdmission };

export interface RunningStageServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

const problemsBody = (problems: InputProblem[]) => ({
  error: redact(`invalid request: ${problems.map(formatProblem).join('; ')}`),
  problems: problems.map((p) => ({ path: p.path, message: redact(p.message) })),
});

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;
const ROUTES: Array<[RegExp, string]> = [
  [/^\/healthz$|^\/test$/, '/healthz'],
  [/^\/metrics$/, '/metrics'],
  [/^\/api\/v1\/jobs$/, '/api/v1/jobs'],
  [/^\/api\/v1\/jobs\/[^/]+$/, '/api/v1/jobs/{id}'],
  [/^\/api\/v1\/releases\/[^/]+\/cancel$/, '/api/v1/releases/{release}/cancel'],
  [/^\/api\/v1\/releases\/[^/]+\/[^/]+$/, '/api/v1/releases/{release}/{action}'],
  [/^\/(visibility|jmeter)\//, '/clover'],
  [/^\/ui(\/|$)/, '/ui'],
];
const routeOf = (path: string) => ROUTES.find(([re]) => re.test(path))?.[1] ?? 'other';

export function startStageServer(
  opts: StageServerOptions & { port?: number; host?: string },
): Promise<RunningStageServer> {
  const limit = opts.maxBodyBytes ?? 1024 * 1024;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? 10_000;
  const maxDepth = opts.maxJsonDepth ?? 64;
  const logger = jsonLogger(opts.log ?? (() => undefined));
  const { jobs, metrics } = opts;

  const baseUrl = (req: IncomingMessage) =>
    (opts.publicUrl ?? `http://${req.headers.host ?? 'localhost'}`).replace(/\/$/, '');

  async function route(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    query: URLSearchParams,
    expectContinue: boolean,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    if (path === '/healthz' || path === '/test') {
      return send(res, 200, { status: 'ok', store: jobs.store.kind, activeJobs: jobs.activeCount });
    }
    if (path === '/metrics' && metrics) {
      return send(res, 200, await metrics.registry.metrics(), {
        'content-type': metrics.registry.contentType,
      });
    }
    if (opts.ui && (path === '/ui' || path.startsWith('/ui/'))) return opts.ui.handle(req, res, path);
    const isClover = CLOVER_PATHS.test(path);
    let auth: AuthResult | { ok: 'needs-body' } = { ok: true, by: 'none' };
    if (!(isClover && opts.cloverRoutesOpen)) {
      auth = checkHeaders(opts.auth, req.headers, {
        remoteAddress: req.socket.remoteAddress,
        rawHeaders: req.rawHeaders,
      });
      if (!auth.ok) return refuse(req, res, auth);
    }
    if (expectContinue) res.writeContinue();
    const raw = await readBody(req, limit, bodyTimeoutMs);
    if (auth.ok === 'needs-body') {
      const signed = checkSignature(opts.auth, req.headers, raw);
      if (!signed.ok) return refuse(req, res, signed);
    }

    let m: RegExpExecArray | null;
    if ((m = /^\/api\/v1\/releases\/([^/]+)\/cancel$/.exec(path))) {
      if (method !== 'POST') throw new HttpError(405, 'use POST', {}, { allow: 'POST' });
      const release = decodeSegment(m[1], 'release');
      const job = await jobs.cancel(release);
      if (!job) return send(res, 404, { error: `release "${release}" has no active job`, release });
      return send(res, 202, { ...publicJob(job), cancelRequested: true });
    }
    if ((m = /^\/api\/v1\/releases\/([^/]+)\/([^/]+)$/.exec(path))) {
      if (method !== 'POST') throw new HttpError(405, 'use POST', {}, { allow: 'POST' });
      const [release, action] = [decodeSegment(m[1], 'release'), decodeSegment(m[2], 'action')];
      const parsed = await parseStartRequest(release, action, parseJsonBody(raw, maxDepth), opts.content);
      if (!parsed.ok) return send(res, 400, problemsBody(parsed.problems));
      const refused = await opts.admit?.(action as StageAction, parsed.value.spec, parsed.value.params);
      if (refused?.length)
        return send(res, 400, problemsBody(refused.map((p) => ({ ...p, file: 'request body' }))));
      const r = await jobs.submit(release, action as never, parsed.value.spec, parsed.value.params);
      if ('conflict' in r) {
        return send(res, 409, {
          error: `release "${release}" already has an active job (${r.conflict}); wait for it or cancel it`,
          activeJobId: r.conflict,
          statusUrl: `${baseUrl(req)}/api/v1/jobs/${r.conflict}`,
        });
      }
      const statusUrl = `${baseUrl(req)}/api/v1/jobs/${r.job.id}`;
      const caller =
        auth.ok === true
          ? { auth: auth.by, ...(auth.principal ? { principal: auth.principal } : {}) }
          : { auth: 'signature' };
      logger.info('job accepted', {
        requestId: res.getHeader('x-request-id'),
        jobId: r.job.id,
        release,
        action,
        ...caller,
      });
      return send(
        res,
        202,
        { id: r.job.id, release, action, status: r.job.status, progress: r.job.progress, statusUrl },
        { location: statusUrl },
      );
    }
    if (path === '/api/v1/jobs') {
      if (method !== 'GET') throw new HttpError(405, 'use GET', {}, { allow: 'GET' });
      const release = query.get('release');
      if (!release) throw badRequest('release', 'give ?release=<name> (the jobs of one release are listed)');
      const n = Number(query.get('limit') ?? 20);
      if (!Number.isInteger(n) || n < 1 || n > 100)
        throw badRequest('limit', 'expected an integer from 1 to 100');
      const list = await jobs.list(release, n);
      return send(res, 200, { release, jobs: list.map(publicJob) });
    }
    if ((m = /^\/api\/v1\/jobs\/([^/]+)$/.exec(path))) {
      if (method !== 'GET') throw new HttpError(405, 'use GET', {}, { allow: 'GET' });
      const id = decodeSegment(m[1], 'id');
      const job = await jobs.get(id);
      if (!job) return send(res, 404, { error: `no job ${id} (finished jobs are kept for a limited time)` });
      // Job objects are replaced on every change, so the serialized body can be cached per object.
      let body = serialized.get(job);
      if (!body) serialized.set(job, (body = JSON.stringify(publicJob(job))));
      return send(res, 200, body, { 'content-type': 'application/json' });
    }
    if (isClover && opts.clover) {
      const out = await opts.clover.handle(method, path, parseJsonLoose(raw, maxDepth));
      if (out) return send(res, out.status, out.body);
    }
    throw new HttpError(404, `no route ${method} ${path}`);
  }

  /** 401/403 from the headers: answered at once, before any body byte is read; the body never is. */
  function refuse(req: IncomingMessage, res: ServerResponse, auth: Extract<AuthResult, { ok: false }>): void {
    const headers: Record<string, string> =
      auth.status === 401 ? { 'www-authenticate': 'Bearer realm="clover-cd"' } : {};
    const length = Number(req.headers['content-length'] ?? NaN);
    if (!req.readableEnded && length !== 0 && !(length <= limit)) {
      // A body of unknown or excessive size is never read: the answer closes the connection, and read(0) tells
      // node:http the body is being consumed, so it does not drain it before closing.
      headers.connection = 'close';
      req.read(0);
    }
    // A declared body within the limit is discarded as it arrives (nothing is kept or parsed), so a client
    // still sending it reads the 401 instead of a reset connection (a lingering close, bounded by the limit).
    send(res, auth.status, { error: auth.message }, headers);
    reasons.set(res, auth.message);
  }

  function handle(req: IncomingMessage, res: ServerResponse, expectContinue = false): void {
    const started = Date.now();
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    res.setHeader('x-request-id', requestId);
    let path = '';
    let query = new URLSearchParams();
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      path = url.pathname;
      query = url.searchParams;
    } catch {
      /* answered below */
    }
    const routeName = path ? routeOf(path) : 'other';
    res.on('finish', () => {
      const ms = Date.now() - started;
      metrics?.httpRequest(req.method ?? 'GET', routeName, res.statusCode, ms);
      const routine = res.statusCode < 400 && (req.method === 'GET' || routeName === '/healthz');
      const level: LogLevel = res.statusCode >= 500 ? 'error' : routine ? 'debug' : 'info';
      const fields: Record<string, unknown> = {
        requestId,
        method: req.method,
        route: routeName,
        path: path || req.url,
        status: res.statusCode,
        ms,
      };
      if (reasons.has(res)) fields.reason = reasons.get(res);
      logger.log(level, 'request', fields);
    });
    const work = path
      ? route(req, res, path, query, expectContinue)
      : Promise.reject(badRequest('url', 'malformed request URL'));
    work.catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof HttpError) {
        reasons.set(res, err.message);
        if (err.headers.connection === 'close') res.shouldKeepAlive = false;
        return send(res, err.status, { error: redact(err.message), ...err.extra }, err.headers);
      }
      const message = redact((err as Error)?.message ?? String(err));
      reasons.set(res, message);
      if (err instanceof StoreUnavailableError) {
        // The job store (Redis) is down: 503 makes Orca retry the poll instead of failing the stage.
        return send(res, 503, { error: `temporarily unavailable: ${message}` }, { 'retry-after': '1' });
      }
      send(res, 500, { error: `internal error (request ${requestId}); the server log has the details` });
    });
  }

  const server = createServer(
    {
      headersTimeout: opts.headersTimeoutMs ?? 10_000,
      requestTimeout: opts.requestTimeoutMs ?? 30_000,
      maxHeaderSize: opts.maxHeaderBytes ?? 16 * 1024,
      connectionsCheckingInterval: 1000,
    },
    (req, res) => handle(req, res),
  );
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => handle(req, res, true));
  server.on('clientError', (err: Error, socket: Duplex) => {
    const status = answerClientError(err, socket, opts.maxHeaderBytes ?? 16 * 1024);
    if (status)
      logger.log('info', 'request', {
        route: 'other',
        status,
        reason: (err as NodeJS.ErrnoException).code ?? err.message,
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
            server.closeIdleConnections();
            // In-flight requests get a moment to be answered; then every connection is closed.
            setTimeout(() => server.closeAllConnections(), 2000).unref();
          }),
      });
    });
  });
}

const serialized = new WeakMap<object, string>();
/** Why a request was refused, for its log line. */
const reasons = new WeakMap<ServerResponse, string>();

function parseJsonLoose(raw: Buffer, maxDepth: number): unknown {
  if (!raw.length) return undefined;
  try {
    return parseJsonBody(raw, maxDepth);
  } catch {
    throw new HttpError(400, 'Invalid value in json/yaml');
  }
}
