/**
 * clovisor: eBPF L3/L4 session evidence beside the mesh. Public surface of the module.
 *
 * For the gate: `collectL4Evidence(window, versions, opts)` returns the L4 counts per version in a window from a
 * running tracer (in-process `tracer`, or the HTTP endpoint of `clover-cd clovisor run`), and
 * `evaluateL4Rule(rule, evidence, { stable, candidate })` judges the spec's `l4` rule in the Verdict result shape.
 * When no tracer runs, collectL4Evidence throws InfrastructureError (exit 4): the gate then marks L4 evidence
 * missing (inconclusive only when the rule or `requireL4` requires it).
 */
import { createHttpClient } from '../services/http.js';
import { InfrastructureError } from '../util/errors.js';
import { DEFAULT_PIN_ROOT, readState } from './loader.js';
import type { Tracer } from './tracer.js';
import type { L4Evidence } from './types.js';

export { Tracer, type TracerOptions, type TracerStatus } from './tracer.js';
export { evaluateL4Rule, buildEvidence, countSessions, type L4Rule, type L4RuleResult } from './evidence.js';
export {
  cleanup as cleanupClovisor,
  readState,
  DEFAULT_PIN_ROOT,
  DEFAULT_STATE_DIR,
  FILTER_PRIO,
  FILTER_HANDLE,
  type CleanupReport,
} from './loader.js';
export { preflight } from './system.js';
export { serveTracer } from './server.js';
export {
  loadClovisorConfig,
  readRedisConfig,
  parseClovisorLabels,
  parseEgressMatch,
  egressAllowed,
  kubernetesTargets,
  sandboxTargets,
  spansUrlFromJaegerKey,
  spansFromJaegerKey,
  type ClovisorConfig,
} from './targets.js';
export type {
  EgressMatch,
  Target,
  OpenConnection,
  SessionRecord,
  FlowRecord,
  L4Counts,
  L4Evidence,
  KernelStats,
} from './types.js';

export interface CollectOptions {
  /** A tracer running in this process. */
  tracer?: Tracer;
  /** Base URL of a running `clover-cd clovisor run` (default: the `listen` it recorded in its state). */
  url?: string;
  pinRoot?: string;
  stateDir?: string;
  service?: string;
}

/** Where a detached tracer listens, as recorded by `clovisor run` next to its loader state. */
export function tracerUrl(pinRoot = DEFAULT_PIN_ROOT, stateDir?: string): string | undefined {
  const s = readState(pinRoot, stateDir) as (ReturnType<typeof readState> & { listen?: string }) | undefined;
  return s?.listen ? `http://${s.listen}` : undefined;
}

/**
 * L4 evidence per version for a window (epoch ms). `versions` are the version labels to report,
 * e.g. ['v1', 'v2'] (stable first by convention).
 */
export async function collectL4Evidence(
  window: { start: number; end: number },
  versions: string[],
  opts: CollectOptions = {},
): Promise<L4Evidence> {
  if (opts.tracer) {
    await opts.tracer.prepareEvidence();
    return opts.tracer.evidence(window, versions, opts.service);
  }
  const url = opts.url ?? tracerUrl(opts.pinRoot, opts.stateDir);
  if (!url) {
    throw new InfrastructureError(
      'clovisor',
      opts.pinRoot ?? DEFAULT_PIN_ROOT,
      'no clovisor tracer is running (no state with a listen address)',
      'start one with: clover-cd clovisor run -c clovisor.yaml --listen 127.0.0.1:9464',
    );
  }
  const http = createHttpClient({
    system: 'clovisor',
    baseURL: url,
    timeoutMs: 15_000,
    hint: `clover-cd clovisor status; the tracer listens at ${url}`,
  });
  const params = new URLSearchParams({
    start: String(window.start),
    end: String(window.end),
    versions: versions.join(','),
  });
  if (opts.service) params.set('service', opts.service);
  const r = await http.get<L4Evidence>(`/api/v1/evidence?${params}`);
  if (r.status !== 200)
    throw new InfrastructureError(
      'clovisor',
      `${url}/api/v1/evidence`,
      `HTTP ${r.status}: ${JSON.stringify(r.data)}`,
    );
  return r.data;
}
