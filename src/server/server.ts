import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, type Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { redact } from '../util/redact.js';
import { checkHeaders, checkSignature, type AuthConfig, type AuthResult } from './auth.js';
import type { CloverRoutes } from './clover-routes.js';
import type { ContentDir } from './content.js';
import { answerClientError, badRequest, HttpError } from './http-util.js';
import type { JobManager } from './jobs.js';
import { jsonLogger, type Logger, type LogLevel } from './logger.js';
import type { ServerMetrics } from './metrics.js';
import { rawBody, registerCloverRoutes, registerHealthRoutes, registerJobApi } from './routes.js';
import { StoreUnavailableError } from './store.js';
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

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;
const closing = { connection: 'close' };

/** Per request: what its log line says, and how the caller was known (set by the hooks). */
interface RequestState {
  labels: WeakMap<IncomingMessage, string>;
  reasons: WeakMap<IncomingMessage, string>;
  callers: WeakMap<IncomingMessage, AuthResult | { ok: 'needs-body' }>;
  /** Requests that sent `Expect: 100-continue`: told to go on once their credentials passed. */
  continued: WeakSet<IncomingMessage>;
}

/** The limits with their defaults filled in. */
interface Limits {
  bodyBytes: number;
  bodyTimeoutMs: number;
  jsonDepth: number;
  headerBytes: number;
}

export async function startStageServer(
  opts: StageServerOptions & { port?: number; host?: string },
): Promise<RunningStageServer> {
  const limits: Limits = {
    bodyBytes: opts.maxBodyBytes ?? 1024 * 1024,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? 10_000,
    jsonDepth: opts.maxJsonDepth ?? 64,
    headerBytes: opts.maxHeaderBytes ?? 16 * 1024,
  };
  const logger = jsonLogger(opts.log ?? (() => undefined));
  const state: RequestState = {
    labels: new WeakMap(),
    reasons: new WeakMap(),
    callers: new WeakMap(),
    continued: new WeakSet(),
  };
  const answerError = errorAnswerer(state, limits);
  const app = createApp(opts, limits, state, logger, answerError);
  addRequestHooks(app, opts.auth, limits, state);
  app.setErrorHandler(answerError);
  app.setNotFoundHandler(async (request) => {
    throw new HttpError(404, `no route ${request.method} ${request.url.split('?')[0]}`);
  });
  registerHealthRoutes(app, opts);
  registerJobApi(app, {
    ...opts,
    maxJsonDepth: limits.jsonDepth,
    logger,
    callerOf: (request) => state.callers.get(request),
  });
  registerCloverRoutes(app, {
    clover: opts.clover,
    open: opts.cloverRoutesOpen,
    maxJsonDepth: limits.jsonDepth,
  });
  opts.ui?.register(app, { label: '/ui', open: true });

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

/** Every request's log line and metrics, whoever answers it (a route, the error handler, a bad URL). */
function requestObserver(state: RequestState, logger: Logger, metrics: ServerMetrics | undefined) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const started = Date.now();
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    res.setHeader('x-request-id', requestId);
    res.on('finish', () => {
      const ms = Date.now() - started;
      const route = state.labels.get(req) ?? 'other';
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
      if (state.reasons.has(req)) fields.reason = state.reasons.get(req);
      logger.log(level, 'request', fields);
    });
  };
}

/** fastify on its node:http server (timeouts, header limit, `checkContinue`), taking bodies raw; no routes yet. */
function createApp(
  opts: StageServerOptions,
  limits: Limits,
  state: RequestState,
  logger: Logger,
  answerError: ReturnType<typeof errorAnswerer>,
) {
  const observe = requestObserver(state, logger, opts.metrics);
  const app = Fastify({
    serverFactory: (handler) => {
      const server = createServer(
        {
          headersTimeout: opts.headersTimeoutMs ?? 10_000,
          requestTimeout: opts.requestTimeoutMs ?? 30_000,
          maxHeaderSize: limits.headerBytes,
          connectionsCheckingInterval: 1000,
        },
        (req, res) => (observe(req, res), handler(req, res)),
      );
      // Without this listener node:http would answer `Expect: 100-continue` before the credentials are checked.
      server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
        state.continued.add(req);
        observe(req, res);
        handler(req, res);
      });
      server.keepAliveTimeout = 65_000;
      return server;
    },
    clientErrorHandler: (err: Error, socket: Duplex) => {
      const status = answerClientError(err, socket, limits.headerBytes);
      if (status)
        logger.log('info', 'request', {
          route: 'other',
          status,
          reason: (err as NodeJS.ErrnoException).code ?? err.message,
        });
    },
    bodyLimit: limits.bodyBytes,
    routerOptions: { maxParamLength: limits.headerBytes }, // a path segment is bounded by the header block alone
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
  return app;
}

/** Credentials from the headers (`onRequest`), the body deadline (`preParsing`), the signature (`preValidation`). */
function addRequestHooks(
  app: FastifyInstance,
  authConfig: AuthConfig,
  limits: Limits,
  state: RequestState,
): void {
  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config as RouteConfig;
    state.labels.set(request.raw, config.label ?? 'other');
    reply.header('cache-control', 'no-store'); // job states and pages change; no proxy may keep them
    if (config.open) return;
    const auth = checkHeaders(authConfig, request.headers, {
      remoteAddress: request.raw.socket.remoteAddress,
      rawHeaders: request.raw.rawHeaders,
    });
    if (!auth.ok) return refuse(request, reply, auth, limits, state);
    state.callers.set(request.raw, auth);
    if (state.continued.has(request.raw)) reply.raw.writeContinue();
  });
  // The body deadline: a body that stops coming ends the read with 408 (fastify's reader has no deadline).
  app.addHook('preParsing', async (request, reply, payload) => {
    const { 'content-length': length, 'transfer-encoding': chunked } = request.headers;
    if (!chunked && (length === undefined || length === '0')) return payload; // no body to read
    const body = new PassThrough();
    const timer = setTimeout(() => {
      body.destroy(
        new HttpError(
          408,
          `the request body was not received within ${limits.bodyTimeoutMs} ms`,
          {},
          closing,
        ),
      );
    }, limits.bodyTimeoutMs);
    reply.raw.once('close', () => clearTimeout(timer));
    body.once('close', () => clearTimeout(timer));
    // fastify's reader takes the error while it reads; one that comes after the answer concerns nobody.
    body.on('error', () => undefined);
    payload.once('error', (err) => body.destroy(err));
    return payload.pipe(body);
  });
  app.addHook('preValidation', async (request, reply) => {
    if (state.callers.get(request.raw)?.ok !== 'needs-body') return;
    const signed = checkSignature(authConfig, request.headers, rawBody(request));
    if (!signed.ok) return refuse(request, reply, signed, limits, state);
    state.callers.set(request.raw, signed);
  });
}

/** 401/403 from the headers: answered at once, before any body byte is read; the body never is. */
function refuse(
  request: FastifyRequest,
  reply: FastifyReply,
  auth: Extract<AuthResult, { ok: false }>,
  limits: Limits,
  state: RequestState,
) {
  if (auth.status === 401) reply.header('www-authenticate', 'Bearer realm="clover-cd"');
  const length = Number(request.headers['content-length'] ?? NaN);
  if (!request.raw.readableEnded && length !== 0 && !(length <= limits.bodyBytes)) {
    // A body of unknown or excessive size is never read: the answer closes the connection, and read(0) tells
    // node:http the body is being consumed, so it does not drain it before closing.
    reply.header('connection', 'close');
    request.raw.read(0);
  }
  // A declared body within the limit is discarded as it arrives (nothing is kept or parsed), so a client
  // still sending it reads the 401 instead of a reset connection (a lingering close, bounded by the limit).
  state.reasons.set(request.raw, auth.message);
  return reply.code(auth.status).send({ error: auth.message });
}

/** The answer to an error: its own 4xx, 413 over the body limit, 503 with the job store down, else 500. */
function errorAnswerer(state: RequestState, limits: Limits) {
  return (
    err: Error & { code?: string; statusCode?: number },
    request: FastifyRequest,
    reply: FastifyReply,
  ) => {
    if (reply.raw.headersSent) return void reply.raw.destroy();
    const message = redact(err.message ?? String(err));
    state.reasons.set(request.raw, message);
    const bodyLimit = request.routeOptions.bodyLimit ?? limits.bodyBytes;
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
  };
}
