import type { Command } from 'commander';
import { MESH_PRINCIPAL_PATTERN } from '../../spec/schema.js';
import { InvalidInputError } from '../../util/errors.js';
import { registerSecret, redact } from '../../util/redact.js';
import { action, globalOptions } from '../context.js';
import { parseUrlFlag } from '../flags.js';
import { note, printResult } from '../output.js';

interface ServeOptions {
  port: string;
  host: string;
  redis?: string;
  tokenEnv: string;
  hmacSecretEnv: string;
  readTokenEnv: string;
  ui: boolean;
  allowUnauthenticated: boolean;
  trustMeshPrincipal: string[];
  platform: 'kubernetes' | 'sandbox';
  context?: string;
  kubeconfig?: string;
  contentDir?: string;
  evidenceDir?: string;
  maxBody: string;
  publicUrl?: string;
  openCloverRoutes: boolean;
  lease: string;
  shutdownGrace: string;
}

const MESH_ENV = 'CLOVER_CD_TRUST_MESH_PRINCIPAL';

/** The SPIFFE ids of --trust-mesh-principal and the environment variable; exit 2 naming a malformed one. */
function meshPrincipals(flags: string[], env: string | undefined): string[] {
  const all = [...flags, ...(env ?? '').split(',')].map((p) => p.trim()).filter(Boolean);
  for (const p of all) {
    if (!new RegExp(MESH_PRINCIPAL_PATTERN).test(p)) {
      throw new InvalidInputError(
        `--trust-mesh-principal / ${MESH_ENV}: "${p}" is not a workload identity; expected spiffe://<trust domain>/ns/<namespace>/sa/<service account>, e.g. spiffe://cluster.local/ns/spinnaker/sa/spin-orca`,
      );
    }
  }
  return [...new Set(all)];
}

/** What `serve --help` adds after the options: the API, how callers are known, examples. */
const SERVE_HELP = `
API (what the generated webhook stages call):
  POST /api/v1/releases/{release}/{deploy|traffic|load|gate|promote|rollback}
       body {spec, weight?, step?, window?, execution?}   → 202 {id, status: RUNNING, statusUrl}
  GET  /api/v1/jobs/{id}    → {status: RUNNING|SUCCEEDED|FAILED|INCONCLUSIVE|ERROR|CANCELED, progress, verdict?, reports?}
  GET  /api/v1/jobs?release=NAME[&limit=N]                 the release's jobs, newest first
  POST /api/v1/releases/{release}/cancel                   (Spinnaker's cancelEndpoint)
  GET  /healthz, GET /metrics (Prometheus; no auth)
  GET  /ui   dashboard: releases (phase, step, weights, last verdict), a page per release with its steps, jobs,
       gate reports and evidence; updated every 2 s. A browser logs in at /ui/login with the token or the
       read-only token (exchanged for an HttpOnly session cookie); scripts send the bearer token.
  409 when the release already has an active job; 400 names the field; 401 no credentials, 403 wrong ones; 413 body too large;
  408 body too slow; 503 only when the job store (Redis) is unreachable. Logs: JSON lines on stderr (--verbose adds polls).
  Clover's controller routes: /visibility/clear, /visibility/get/stats/{system|metrics|tracing|all},
  /jmeter/gen, /jmeter/start, /jmeter/results/{log|results}, /nginx/{lb|server},
  /snort/{addrule|start|stop|get_events}; with --redis also /collector/{start|stop|set}, /visibility/set,
  /visibility/get/{services|metrics|all} (continuous visibility: traces and metrics into Clover's Redis keys).

Callers: a bearer token (preconfigured webhooks: the secret header of \`pipeline orca-config\`), an HMAC
signature, or — with --trust-mesh-principal — the identity the local Istio sidecar authenticated (inline webhook
stages, which carry no secret). The identity is read from the last x-forwarded-client-cert element, the one the
sidecar appends (APPEND_FORWARD), and only on connections from the sidecar's address (127.0.0.6, ::6, localhost):
never enable it without a sidecar and mutual TLS in front of the server.

Examples:
  CLOVER_CD_TOKEN=$(cat /var/run/secrets/clover-cd/token) clover-cd serve --redis redis://redis:6379/0
  CLOVER_CD_TOKEN=… clover-cd serve --trust-mesh-principal spiffe://cluster.local/ns/spinnaker/sa/spin-orca
  clover-cd sandbox up --detach && clover-cd serve --platform sandbox --allow-unauthenticated --port 8080
  CLOVER_CD_TOKEN=… CLOVER_CD_READ_TOKEN=… clover-cd serve --evidence-dir /var/lib/clover-cd/evidence   # then open http://HOST:8080/ui
`;

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the stage server the generated Spinnaker webhook stages call')
    .option('--port <n>', 'port to listen on', '8080')
    .option('--host <addr>', 'address to bind', '0.0.0.0')
    .option(
      '--redis <url>',
      'keep jobs in Redis (redis://host:port/db): survives restarts, allows several replicas; in memory without it',
      (v: string) => parseUrlFlag('--redis', v, ['redis:', 'rediss:']),
    )
    .option(
      '--token-env <name>',
      'environment variable holding the bearer token callers send',
      'CLOVER_CD_TOKEN',
    )
    .option(
      '--hmac-secret-env <name>',
      'environment variable holding the shared secret for X-Clover-Signature',
      'CLOVER_CD_HMAC_SECRET',
    )
    .option(
      '--read-token-env <name>',
      'environment variable holding a read-only token: it opens the dashboard (/ui) only',
      'CLOVER_CD_READ_TOKEN',
    )
    .option('--no-ui', 'do not serve the dashboard under /ui')
    .option('--allow-unauthenticated', 'serve without a token or secret (local runs only)', false)
    .option(
      '--trust-mesh-principal <spiffe-id>',
      `admit callers the local Istio sidecar authenticated as this identity, e.g. spiffe://cluster.local/ns/spinnaker/sa/spin-orca (repeatable; also ${MESH_ENV}, comma-separated). Only behind a sidecar with mutual TLS: deploy/clover-cd/overlays/mesh-auth`,
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--platform <kind>',
      'where stages act: kubernetes (kubeconfig / in-cluster) or sandbox (a running `clover-cd sandbox up --detach`)',
      'kubernetes',
    )
    .option('--context <name>', 'kubeconfig context (platform kubernetes)')
    .option('--kubeconfig <file>', 'kubeconfig file (platform kubernetes)')
    .option(
      '--content-dir <dir>',
      'directory specs may name load plans and candidate manifests from (relative names, regular files); without it, requests carry them inline and the server reads no file a request names',
    )
    .option('--evidence-dir <dir>', 'where gate evidence bundles are written')
    .option('--max-body <bytes>', 'largest accepted request body', String(1024 * 1024))
    .option('--public-url <url>', 'base URL put in statusUrl (default: from the Host header of the request)')
    .option(
      '--open-clover-routes',
      "serve Clover's controller routes (/visibility, /collector, /jmeter, /nginx, /snort) without authentication, as Clover's controller did",
      false,
    )
    .option(
      '--lease <duration>',
      'lease on a running job: how soon another replica takes over the job of a dead one',
      '10s',
    )
    .option(
      '--shutdown-grace <duration>',
      'on SIGTERM, how long running stages get to stop before their jobs are handed to another replica',
      '10s',
    )
    .addHelpText('after', SERVE_HELP)
    .action(action(serve));
}

/** The numeric and duration flags, and --content-dir; exit 2 naming the flag. */
async function serverLimits(opts: ServeOptions) {
  const { parseDurationMs } = await import('../../util/units.js');
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidInputError(`--port must be 0-65535, got "${opts.port}"`);
  const maxBody = Number(opts.maxBody);
  if (!Number.isInteger(maxBody) || maxBody < 1024)
    throw new InvalidInputError(`--max-body must be a number of bytes >= 1024, got "${opts.maxBody}"`);
  const duration = (flag: string, value: string) => {
    try {
      return parseDurationMs(value);
    } catch (err) {
      throw new InvalidInputError(`${flag}: ${(err as Error).message}`);
    }
  };
  const leaseMs = duration('--lease', opts.lease);
  const shutdownGraceMs = duration('--shutdown-grace', opts.shutdownGrace);
  if (opts.contentDir) {
    const { statSync } = await import('node:fs');
    if (!statSync(opts.contentDir, { throwIfNoEntry: false })?.isDirectory())
      throw new InvalidInputError(`--content-dir ${opts.contentDir} is not a directory`);
  }
  return { port, maxBody, leaseMs, shutdownGraceMs };
}

/** The secrets from the environment (registered for redaction) and the trusted mesh identities; exit 2 without any. */
function callerCredentials(opts: ServeOptions) {
  const token = process.env[opts.tokenEnv] || undefined;
  const hmacSecret = process.env[opts.hmacSecretEnv] || undefined;
  const readToken = process.env[opts.readTokenEnv] || undefined;
  registerSecret(token);
  registerSecret(hmacSecret);
  registerSecret(readToken);
  const trustMeshPrincipals = meshPrincipals(opts.trustMeshPrincipal, process.env[MESH_ENV]);
  if (!token && !hmacSecret && !trustMeshPrincipals.length && !opts.allowUnauthenticated) {
    throw new InvalidInputError(
      `no credentials: set ${opts.tokenEnv} (bearer token) and/or ${opts.hmacSecretEnv} (HMAC secret), or --trust-mesh-principal behind an Istio sidecar, or pass --allow-unauthenticated for a local run`,
    );
  }
  return { token, hmacSecret, readToken, trustMeshPrincipals };
}

/** Where the stages act: the running sandbox, or Kubernetes (kubeconfig / in-cluster). */
async function servePlatform(opts: ServeOptions) {
  if (!['kubernetes', 'sandbox'].includes(opts.platform))
    throw new InvalidInputError(`--platform must be kubernetes or sandbox, got "${opts.platform}"`);
  const sandbox =
    opts.platform === 'sandbox' ? await (await import('../../sandbox/index.js')).connectSandbox() : undefined;
  const platform = sandbox
    ? sandbox.platform
    : (await import('../../services/kubernetes.js')).createKubernetesPlatform({
        context: opts.context,
        kubeconfig: opts.kubeconfig,
      });
  return { sandbox, platform };
}

async function serve(opts: ServeOptions, cmd: Command): Promise<number> {
  const { port, maxBody, leaseMs, shutdownGraceMs } = await serverLimits(opts);
  const { readToken, ...auth } = callerCredentials(opts);
  const { sandbox, platform } = await servePlatform(opts);
  const { stageAdmission, stageRegistry } = await import('../../stages/actions.js');
  const { startStageService, levelOf } = await import('../../server/index.js');
  const { cloverBackend } = await import('../../server/clover-backend.js');
  const { cloverSdcBackend } = await import('../../server/clover-sdc.js');
  const { cloverCollectorBackend } = await import('../../server/clover-collector.js');
  const collector = opts.redis
    ? cloverCollectorBackend({
        platform,
        redisUrl: opts.redis,
        log: (l) => globalOptions(cmd).verbose && note(l),
      })
    : undefined;
  const verbose = globalOptions(cmd).verbose;
  const svc = await startStageService({
    port,
    host: opts.host,
    redisUrl: opts.redis,
    // Plans reach the stages inline (request.ts reads named ones from --content-dir): no base directory.
    registry: stageRegistry({
      platform,
      evidenceDir: opts.evidenceDir ?? (await import('../../validators/index.js')).defaultEvidenceDir(),
    }),
    admit: stageAdmission({ platform }),
    auth,
    maxBodyBytes: maxBody,
    contentDir: opts.contentDir,
    publicUrl: opts.publicUrl,
    clover: {
      ...cloverBackend({ platform, redisUrl: opts.redis }),
      ...cloverSdcBackend({ sdcAddress: sandbox?.urls.grpc, redisUrl: opts.redis }),
      ...collector,
    },
    cloverRoutesOpen: opts.openCloverRoutes,
    leaseMs,
    shutdownGraceMs,
    processMetrics: true,
    ui: opts.ui
      ? {
          platform,
          evidenceDir: opts.evidenceDir ?? (await import('../../validators/index.js')).defaultEvidenceDir(),
          readToken,
          secureCookie: opts.publicUrl?.startsWith('https:'),
        }
      : undefined,
    log: (line) => (verbose || levelOf(line) !== 'debug') && note(line),
  });
  printResult(
    globalOptions(cmd).output,
    {
      url: svc.url,
      store: opts.redis ? redact(opts.redis) : 'memory',
      platform: platform.description,
      replica: svc.jobs.replicaId,
    },
    (d) =>
      `stage server listening on ${d.url} (jobs: ${d.store}; platform: ${d.platform}; replica ${d.replica})`,
  );
  await untilStopped(svc, collector);
  return 0;
}

/** Serves until SIGINT / SIGTERM, then hands the running jobs over; a second signal exits at once. */
function untilStopped(
  svc: { stop(): Promise<void>; jobs: { activeCount: number } },
  collector: { close(): Promise<void> } | undefined,
): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) {
        note(`${signal} again: exiting now`);
        process.exit(130);
      }
      stopping = true;
      note(
        `${signal}: no new requests; handing ${svc.jobs.activeCount} running job(s) over to another replica (or the restarted server)`,
      );
      void Promise.all([svc.stop(), collector?.close()]).then(() => resolve());
    };
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
  });
}
