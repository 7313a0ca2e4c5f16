import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, type Duplex } from 'node:stream';
import Fastify, { type FastifyReply, type FastifyRequest, type RouteHandlerMethod } from 'fastify';
import { formatProblem, type InputProblem } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { checkHeaders, checkSignature, type AuthConfig, type AuthResult } from './auth.js';
import { CLOVER_PREFIXES, type CloverRoutes } from './clover-routes.js';
import type { ContentDir } from './content.js';
import { answerClientError, badRequest, HttpError, parseJsonBody } from './http-util.js';
import type { JobManager } from './jobs.js';
import { jsonLogger, type LogLevel } from './logger.js';
import type { ServerMetrics } from './metrics.js';
import { parseStartRequest } from './request.js';
import { StoreUnavailableError } from './store.js';
import { publicJob, type StageAction } from './types.js';
import type { Ui } from './ui.js';

/**
 * The HTTP stage server on fastify: routing (405 for a known path with another method), body limits and the
 * per-request lifecycle are fastify's. Credentials are checked from the headers (`onRequest`) before any body
 * byte is read; bodies, headers and JSON nesting are bounded in size and time; every client error is a 4xx
 * naming the field, 503 means the job store is unreachable, 500 a bug. Logs are JSON lines with a request id
 * (`x-request-id`, echoed or generated).
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

/** Route options read by the hooks: the metrics/log label, and whether the route skips the API's auth. */
interface RouteConfig {
  label?: string;
  open?: boolean;
}

const problemsBody = (problems: InputProblem[]) => ({
  error: redact(`invalid request: ${problems.map(formatProblem).join('; ')}`),
  problems: problems.map((p) => ({ path: p.path, message: redact(p.message) })),
});

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;
const closing = { connection: 'close' };

export async function startStageServer(
  opts: StageServerOptions & { port?: number; host?: string },
): Promise<RunningStageServer> {
  const limit = opts.maxBodyBytes ?? 1024 * 1024;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? 10_000;
  const maxDepth = opts.maxJsonDepth ?? 64;
  const maxHeaderBytes = opts.maxHeaderBytes ?? 16 * 1024;
  const logger = jsonLogger(opts.log ?? (() => undefined));
  const { jobs, metrics } = opts;
  /** Per request: what its log line says, and how the caller was known (set by the hooks). */
  const labels = new WeakMap<IncomingMessage, string>();
  const reasons = new WeakMap<IncomingMessage, string>();
  const callers = new WeakMap<IncomingMessage, AuthResult | { ok: 'needs-body' }>();
  const continued = new WeakSet<IncomingMessage>();

  /** Every request's log line and metrics, whoever answers it (a route, the error handler, a bad URL). */
  function observe(req: IncomingMessage, res: ServerResponse): void {
    const started = Date.now();
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    res.setHeader('x-request-id', requestId);
    res.on('finish', () => {
      const ms = Date.now() - started;
      const route = labels.get(req) ?? 'other';
      metrics?.httpRequest(req.method ?? 'GET', route, res.statusCode, ms);
      const routine = res.statusCode < 400 && (req.method === 'GET' || route === '/healthz');
      const level: LogLevel = res.statusCode >= 500 ? 'error' : routine ? 'debug' : 'info';
      const path = (req.url ?? '').split('?')[0];
      const fields: Record<string, unknown> = {
        requestId,
        method: req.method,
        route,
        path,
        status: res.statusCode,
        ms,
      };
      if (reasons.has(req)) fields.reason = reasons.get(req);
      logger.log(level, 'request', fields);
    });
  }

  const app = Fastify({
    serverFactory: (handler) => {
      const server = createServer(
        {
          headersTimeout: opts.headersTimeoutMs ?? 10_000,
          requestTimeout: opts.requestTimeoutMs ?? 30_000,
          maxHeaderSize: maxHeaderBytes,
          connectionsCheckingInterval: 1000,
        },
        (req, res) => (observe(req, res), handler(req, res)),
      );
      // Without this listener node:http would answer `Expect: 100-continue` before the credentials are checked.
      server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
        continued.add(req);
        observe(req, res);
        handler(req, res);
      });
      server.keepAliveTimeout = 65_000;
      return server;
    },
    clientErrorHandler: (err: Error, socket: Duplex) => {
      const status = answerClientError(err, socket, maxHeaderBytes);
      if (status)
        logger.log('info', 'request', {
          route: 'other',
          status,
          reason: (err as NodeJS.ErrnoException).code ?? err.message,
        });
    },
    bodyLimit: limit,
    routerOptions: { maxParamLength: maxHeaderBytes }, // a path segment is bounded by the header block alone
    frameworkErrors: (err, request, reply) =>
      answerError(
        err.code === 'FST_ERR_BAD_URL' ? badRequest('url', 'malformed percent-encoding in the URL') : err,
        request,
        reply,
      ),
  });
  // Bodies are kept raw: the signature covers the exact bytes, and JSON is parsed with a depth limit by the route.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // Clover's clients send JSON with GETs (`/visibility/get/stats/*`), and a signed GET may carry a body.
  app.addHttpMethod('GET', { hasBody: true, overrideExisting: true });

  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config as RouteConfig;
    labels.set(request.raw, config.label ?? 'other');
    reply.header('cache-control', 'no-store'); // job states and pages change; no proxy may keep them
    if (config.open) return;
    const auth = checkHeaders(opts.auth, request.headers, {
      remoteAddress: request.raw.socket.remoteAddress,
      rawHeaders: request.raw.rawHeaders,
    });
    if (!auth.ok) return refuse(request, reply, auth);
    callers.set(request.raw, auth);
    if (continued.has(request.raw)) reply.raw.writeContinue();
  });
  // The body deadline: a body that stops coming ends the read with 408 (fastify's reader has no deadline).
  app.addHook('preParsing', async (request, reply, payload) => {
    const { 'content-length': length, 'transfer-encoding': chunked } = request.headers;
    if (!chunked && (length === undefined || length === '0')) return payload; // no body to read
    const body = new PassThrough();
    const timer = setTimeout(() => {
      body.destroy(
        new HttpError(408, `the request body was not received within ${bodyTimeoutMs} ms`, {}, closing),
      );
    }, bodyTimeoutMs);
    reply.raw.once('close', () => clearTimeout(timer));
    body.once('close', () => clearTimeout(timer));
    // fastify's reader takes the error while it reads; one that comes after the answer concerns nobody.
    body.on('error', () => undefined);
    payload.once('error', (err) => body.destroy(err));
    return payload.pipe(body);
  });
  app.addHook('preValidation', async (request, reply) => {
    if (callers.get(request.raw)?.ok !== 'needs-body') return;
    const signed = checkSignature(opts.auth, request.headers, rawBody(request));
    if (!signed.ok) return refuse(request, reply, signed);
    callers.set(request.raw, signed);
  });

  /** 401/403 from the headers: answered at once, before any body byte is read; the body never is. */
  function refuse(request: FastifyRequest, reply: FastifyReply, auth: Extract<AuthResult, { ok: false }>) {
    if (auth.status === 401) reply.header('www-authenticate', 'Bearer realm="clover-cd"');
    const length = Number(request.headers['content-length'] ?? NaN);
    if (!request.raw.readableEnded && length !== 0 && !(length <= limit)) {
      // A body of unknown or excessive size is never read: the answer closes the connection, and read(0) tells
      // node:http the body is being consumed, so it does not drain it before closing.
      reply.header('connection', 'close');
      request.raw.read(0);
    }
    // A declared body within the limit is discarded as it arrives (nothing is kept or parsed), so a client
    // still sending it reads the 401 instead of a reset connection (a lingering close, bounded by the limit).
    reasons.set(request.raw, auth.message);
    return reply.code(auth.status).send({ error: auth.message });
  }

  function answerError(
    err: Error & { code?: string; statusCode?: number },
    request: FastifyRequest,
    reply: FastifyReply,
  ) {
    if (reply.raw.headersSent) return void reply.raw.destroy();
    const message = redact(err.message ?? String(err));
    reasons.set(request.raw, message);
    const bodyLimit = request.routeOptions.bodyLimit ?? limit;
    const known =
      err instanceof HttpError
        ? err
        : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? new HttpError(413, `request body is over the limit of ${bodyLimit} bytes`, {}, closing)
          : err.statusCode && err.statusCode >= 400 && err.statusCode < 500
            ? new HttpError(err.statusCode, err.message)
            : undefined;
    if (known)
      return reply
        .code(known.status)
        .headers(known.headers)
        .send({ error: redact(known.message), ...known.extra });
    if (err instanceof StoreUnavailableError) {
      // The job store (Redis) is down: 503 makes Orca retry the poll instead of failing the stage.
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: `temporarily unavailable: ${message}` });
    }
    const requestId = reply.raw.getHeader('x-request-id');
    return reply
      .code(500)
      .send({ error: `internal error (request ${requestId}); the server log has the details` });
  }
  app.setErrorHandler(answerError);
  app.setNotFoundHandler(async (request) => {
    throw new HttpError(404, `no route ${request.method} ${request.url.split('?')[0]}`);
  });

  /** A route answering `method` only; the path with any other method is 405. */
  const route = (method: 'GET' | 'POST', url: string, handler: RouteHandlerMethod) => {
    const config = { label: url.replace(/:(\w+)/g, '{$1}') };
    app.route({ method, url, handler, config });
    app.route({
      method: METHODS.filter((m) => m !== method && !(method === 'GET' && m === 'HEAD')),
      url,
      config,
      handler: async () => {
        throw new HttpError(405, `use ${method}`, {}, { allow: method });
      },
    });
  };
  const params = (request: FastifyRequest) => request.params as Record<string, string>;
  const baseUrl = (request: FastifyRequest) =>
    (opts.publicUrl ?? `http://${request.headers.host ?? 'localhost'}`).replace(/\/$/, '');

  const health: RouteHandlerMethod = async () => ({
    status: 'ok',
    store: jobs.store.kind,
    activeJobs: jobs.activeCount,
  });
  app.all('/healthz', { config: { label: '/healthz', open: true } }, health);
  app.all('/test', { config: { label: '/healthz', open: true } }, health);
  if (metrics) {
    app.all('/metrics', { config: { label: '/metrics', open: true } }, async (_request, reply) =>
      reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
    );
  }

  route('POST', '/api/v1/releases/:release/cancel', async (request, reply) => {
    const { release } = params(request);
    const job = await jobs.cancel(release);
    if (!job) return reply.code(404).send({ error: `release "${release}" has no active job`, release });
    return reply.code(202).send({ ...publicJob(job), cancelRequested: true });
  });
  route('POST', '/api/v1/releases/:release/:action', async (request, reply) => {
    const { release, action } = params(request);
    const body = parseJsonBody(rawBody(request), maxDepth);
    const parsed = await parseStartRequest(release, action, body, opts.content);
    if (!parsed.ok) return reply.code(400).send(problemsBody(parsed.problems));
    const refused = await opts.admit?.(action as StageAction, parsed.value.spec, parsed.value.params);
    if (refused?.length)
      return reply.code(400).send(problemsBody(refused.map((p) => ({ ...p, file: 'request body' }))));
    const r = await jobs.submit(release, action as never, parsed.value.spec, parsed.value.params);
    if ('conflict' in r) {
      return reply.code(409).send({
        error: `release "${release}" already has an active job (${r.conflict}); wait for it or cancel it`,
        activeJobId: r.conflict,
        statusUrl: `${baseUrl(request)}/api/v1/jobs/${r.conflict}`,
      });
    }
    const statusUrl = `${baseUrl(request)}/api/v1/jobs/${r.job.id}`;
    const auth = callers.get(request.raw);
    const caller =
      auth?.ok === true
        ? { auth: auth.by, ...(auth.principal ? { principal: auth.principal } : {}) }
        : { auth: 'none' };
    logger.info('job accepted', {
      requestId: reply.raw.getHeader('x-request-id'),
      jobId: r.job.id,
      release,
      action,
      ...caller,
    });
    return reply
      .code(202)
      .header('location', statusUrl)
      .send({ id: r.job.id, release, action, status: r.job.status, progress: r.job.progress, statusUrl });
  });
  route('GET', '/api/v1/jobs', async (request) => {
    const query = request.query as Record<string, string | undefined>;
    const release = query.release;
    if (!release) throw badRequest('release', 'give ?release=<name> (the jobs of one release are listed)');
    const n = Number(query.limit ?? 20);
    if (!Number.isInteger(n) || n < 1 || n > 100)
      throw badRequest('limit', 'expected an integer from 1 to 100');
    const list = await jobs.list(release, n);
    return { release, jobs: list.map(publicJob) };
  });
  route('GET', '/api/v1/jobs/:id', async (request, reply) => {
    const { id } = params(request);
    const job = await jobs.get(id);
    if (!job)
      return reply.code(404).send({ error: `no job ${id} (finished jobs are kept for a limited time)` });
    // Job objects are replaced on every change, so the serialized body can be cached per object.
    let body = serialized.get(job);
    if (!body) serialized.set(job, (body = JSON.stringify(publicJob(job))));
    return reply.type('application/json').send(body);
  });

  const { clover, ui } = opts;
  if (clover) {
    const answer: RouteHandlerMethod = async (request, reply) => {
      const path = request.url.split('?')[0];
      const out = await clover.handle(request.method, path, parseJsonLoose(rawBody(request), maxDepth));
      if (!out) throw new HttpError(404, `no route ${request.method} ${path}`);
      return reply.code(out.status).send(out.body);
    };
    for (const prefix of CLOVER_PREFIXES)
      app.all(`/${prefix}/*`, { config: { label: '/clover', open: opts.cloverRoutesOpen } }, answer);
  }
  ui?.register(app, { label: '/ui', open: true });

  await app.listen({ port: opts.port ?? 8080, host: opts.host ?? '0.0.0.0' });
  const { port } = app.server.address() as AddressInfo;
  const host = opts.host && opts.host !== '0.0.0.0' ? opts.host : '127.0.0.1';
  return {
    url: `http://${host}:${port}`,
    port,
    server: app.server,
    close: async () => {
      // In-flight requests get a moment to be answered; then every connection is closed.
      setTimeout(() => app.server.closeAllConnections(), 2000).unref();
      await app.close();
    },
  };
}

const serialized = new WeakMap<object, string>();
const rawBody = (request: FastifyRequest) => (request.body as Buffer | undefined) ?? Buffer.alloc(0);

function parseJsonLoose(raw: Buffer, maxDepth: number): unknown {
  if (!raw.length) return undefined;
  try {
    return parseJsonBody(raw, maxDepth);
  } catch {
    throw new HttpError(400, 'Invalid value in json/yaml');
  }
}
