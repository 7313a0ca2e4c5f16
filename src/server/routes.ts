import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest, RouteHandlerMethod } from 'fastify';
import type { StageAdmission } from '../stages/action-types.js';
import { formatProblem, type InputProblem } from '../util/errors.js';
import { redact } from '../util/redact.js';
import type { AuthResult } from './auth.js';
import { CLOVER_PREFIXES, type CloverRoutes } from './clover-routes.js';
import type { ContentDir } from './content.js';
import { badRequest, HttpError, parseJsonBody } from './http-util.js';
import type { JobManager } from './jobs.js';
import type { Logger } from './logger.js';
import type { ServerMetrics } from './metrics.js';
import { parseStartRequest } from './request.js';
import { publicJob, type StageAction } from './types.js';

/**
 * The stage server's route groups, each registered by its own function on the fastify app `server.ts` builds
 * (hooks, limits and error answers are the server's): health and metrics, the job API, Clover's routes.
 */

const problemsBody = (problems: InputProblem[]) => ({
  error: redact(`invalid request: ${problems.map(formatProblem).join('; ')}`),
  problems: problems.map((p) => ({ path: p.path, message: redact(p.message) })),
});

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

/** A route answering `method` only; the path with any other method is 405. */
function route(app: FastifyInstance, method: 'GET' | 'POST', url: string, handler: RouteHandlerMethod): void {
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
}

const params = (request: FastifyRequest) => request.params as Record<string, string>;

/** /healthz (and Clover's /test), /metrics: open to anyone, no release names. */
export function registerHealthRoutes(
  app: FastifyInstance,
  { jobs, metrics }: { jobs: JobManager; metrics?: ServerMetrics },
): void {
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
}

/** What the job API needs from the server. */
export interface JobApiOptions {
  jobs: JobManager;
  content?: ContentDir;
  admit?: StageAdmission;
  publicUrl?: string;
  maxJsonDepth: number;
  logger: Logger;
  /** How the hooks knew the caller of a request (for the "job accepted" line). */
  callerOf: (request: IncomingMessage) => AuthResult | { ok: 'needs-body' } | undefined;
}

/** The job API the webhook stages call: start, cancel, list and poll jobs. */
export function registerJobApi(app: FastifyInstance, opts: JobApiOptions): void {
  const { jobs, logger } = opts;
  const baseUrl = (request: FastifyRequest) =>
    (opts.publicUrl ?? `http://${request.headers.host ?? 'localhost'}`).replace(/\/$/, '');
  route(app, 'POST', '/api/v1/releases/:release/cancel', async (request, reply) => {
    const { release } = params(request);
    const job = await jobs.cancel(release);
    if (!job) return reply.code(404).send({ error: `release "${release}" has no active job`, release });
    return reply.code(202).send({ ...publicJob(job), cancelRequested: true });
  });
  route(app, 'POST', '/api/v1/releases/:release/:action', async (request, reply) => {
    const { release, action } = params(request);
    const body = parseJsonBody(rawBody(request), opts.maxJsonDepth);
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
    const auth = opts.callerOf(request.raw);
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
  route(app, 'GET', '/api/v1/jobs', async (request) => {
    const query = request.query as Record<string, string | undefined>;
    const release = query.release;
    if (!release) throw badRequest('release', 'give ?release=<name> (the jobs of one release are listed)');
    const n = Number(query.limit ?? 20);
    if (!Number.isInteger(n) || n < 1 || n > 100)
      throw badRequest('limit', 'expected an integer from 1 to 100');
    const list = await jobs.list(release, n);
    return { release, jobs: list.map(publicJob) };
  });
  route(app, 'GET', '/api/v1/jobs/:id', async (request, reply) => {
    const { id } = params(request);
    const job = await jobs.get(id);
    if (!job)
      return reply.code(404).send({ error: `no job ${id} (finished jobs are kept for a limited time)` });
    // Job objects are replaced on every change, so the serialized body can be cached per object.
    let body = serialized.get(job);
    if (!body) serialized.set(job, (body = JSON.stringify(publicJob(job))));
    return reply.type('application/json').send(body);
  });
}

/** Clover's controller routes under their prefixes; open without auth only with `cloverRoutesOpen`. */
export function registerCloverRoutes(
  app: FastifyInstance,
  { clover, open, maxJsonDepth }: { clover?: CloverRoutes; open?: boolean; maxJsonDepth: number },
): void {
  if (!clover) return;
  const answer: RouteHandlerMethod = async (request, reply) => {
    const path = request.url.split('?')[0];
    const out = await clover.handle(request.method, path, parseJsonLoose(rawBody(request), maxJsonDepth));
    if (!out) throw new HttpError(404, `no route ${request.method} ${path}`);
    return reply.code(out.status).send(out.body);
  };
  for (const prefix of CLOVER_PREFIXES)
    app.all(`/${prefix}/*`, { config: { label: '/clover', open } }, answer);
}

const serialized = new WeakMap<object, string>();
export const rawBody = (request: FastifyRequest) => (request.body as Buffer | undefined) ?? Buffer.alloc(0);

function parseJsonLoose(raw: Buffer, maxDepth: number): unknown {
  if (!raw.length) return undefined;
  try {
    return parseJsonBody(raw, maxDepth);
  } catch {
    throw new HttpError(400, 'Invalid value in json/yaml');
  }
}
