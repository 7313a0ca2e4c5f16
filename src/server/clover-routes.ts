import { CloverError, ExitCode } from '../util/errors.js';

/**
 * Routes of Clover's controller that existing scripts (cloverctl, dashboards) call, answered with the
 * same shapes: plain-text messages for /jmeter/*, the stats JSON for /visibility/get/stats/*.
 * Each route delegates to a backend function; a route whose backend is not bound answers 501 naming it.
 */
export type StatType = 'system' | 'metrics' | 'tracing' | 'all';

export interface CloverBackend extends CloverSdcBackend {
  visibilityClear?(): Promise<string>;
  visibilityStats?(type: StatType): Promise<Record<string, unknown>>;
  /** Validate and keep a test plan (Clover's test-plan JSON); returns "Generated test plan". */
  jmeterGen?(plan: unknown): Promise<string>;
  /** Start the kept plan in the background; returns "Started jmeter on pid: N" (or a run id). */
  jmeterStart?(opts: { numSlaves?: number; slaveList?: string[] }): Promise<string>;
  /** "Retrieved all results\n" + the log or the JTL. */
  jmeterResults?(kind: 'log' | 'results'): Promise<string>;
}

/**
 * Clover's SDC and collector routes (/nginx/*, /snort/*, /collector/*, /visibility/set, /visibility/get/<conf>):
 * each takes Clover's JSON body and answers Clover's plain-text message (or JSON config), see clover-sdc.ts
 * and clover-collector.ts. Input errors are 400 with the message the backend throws.
 */
export interface CloverSdcBackend {
  nginxLb?(body: unknown): Promise<string>;
  nginxServer?(body: unknown): Promise<string>;
  snortAddRule?(body: unknown): Promise<string>;
  snortStart?(): Promise<string>;
  snortStop?(): Promise<string>;
  /** `{"event_key":"snort_event:1","field":"signature-id"}` → the raw hash value. */
  snortGetEvents?(body: unknown): Promise<string>;
  collectorStart?(body: unknown): Promise<string>;
  collectorStop?(): Promise<string>;
  collectorSet?(body: unknown): Promise<string>;
  visibilityConfig?(type: string): Promise<Record<string, unknown>>;
}

/** Paths of Clover's controller routes (server.ts sends these to `cloverRoutes`). */
export const CLOVER_PATHS = /^\/(visibility|jmeter|collector|nginx|snort)(\/|$)/;

const RETRIEVED = 'Retrieved all results\n';

/** Samples a Clover plan sends (threads × loops × URLs × engines); undefined when it loops until its duration. */
function plannedCount(plan: unknown, engines: number): { count?: number; durationS?: number } {
  const p = plan as
    | { load_spec?: { num_threads?: number; loops?: number; duration?: number }; url_list?: unknown[] }
    | undefined;
  const ls = p?.load_spec;
  const loops = ls?.loops === undefined ? 1 : ls.loops;
  if (!ls?.num_threads || !Array.isArray(p?.url_list) || loops <= 0)
    return { durationS: ls?.duration || undefined };
  return { count: ls.num_threads * loops * p.url_list.length * engines, durationS: ls.duration || undefined };
}

/**
 * "Retrieved all results" only for a complete run: every JTL row ends in a newline, the rows match JMeter's
 * own final count (the log's last "summary =" line) and the plan's count (threads × loops × URLs × engines).
 * Anything else is answered as incomplete with the numbers, never as all results.
 */
async function checkedResults(
  backend: CloverBackend,
  text: string,
  plan: { count?: number; durationS?: number },
): Promise<string> {
  if (!text.startsWith(RETRIEVED)) return text;
  const jtl = text.slice(RETRIEVED.length);
  const lines = jtl.split('\n');
  const partialRow = jtl.length > 0 && !jtl.endsWith('\n');
  const rows = lines.filter(
    (l, i) => l && !l.startsWith('timeStamp,') && !(partialRow && i === lines.length - 1),
  ).length;
  const log = backend.jmeterResults ? await backend.jmeterResults('log') : '';
  const summaries = [...log.matchAll(/summary =\s+(\d+) in /g)];
  const reported = summaries.length ? Number(summaries[summaries.length - 1][1]) : undefined;
  const problems: string[] = [];
  if (partialRow) problems.push('the last row is cut off (the results file is still being written)');
  if (reported !== undefined && reported !== rows)
    problems.push(`JMeter counted ${reported} samples, the results file has ${rows}`);
  if (plan.count !== undefined && plan.count !== rows) {
    problems.push(
      `the plan sends ${plan.count} samples, the results file has ${rows}${plan.durationS && rows < plan.count ? ` (the plan's ${plan.durationS}s duration may have ended the run first)` : ''}`,
    );
  }
  if (!problems.length) return text;
  return `Results incomplete: ${problems.join('; ')}\n${jtl}`;
}

export interface CloverRoutes {
  handle(method: string, path: string, body: unknown): Promise<{ status: number; body: unknown } | undefined>;
}

const STAT_TYPES: StatType[] = ['system', 'metrics', 'tracing', 'all'];

export function cloverRoutes(backend: CloverBackend): CloverRoutes {
  const routes = dispatch(backend);
  const sdcRoutes = dispatchSdc(backend);
  return {
    async handle(method, path, body) {
      const sdc = await sdcRoutes(method, path, body);
      if (sdc) return sdc;
      try {
        return await routes(method, path, body);
      } catch (err) {
        // Clover answered bad input with 400 and a plain-text message; so does this.
        if (err instanceof CloverError && err.exitCode === ExitCode.invalid) {
          return {
            status: 400,
            body: [`Invalid value in test plan json/yaml: ${err.message}`, ...err.details].join('\n'),
          };
        }
        throw err;
      }
    },
  };
}

function dispatch(backend: CloverBackend): CloverRoutes['handle'] {
  const missing = (what: string) => ({ status: 501, body: `${what} is not available on this server` });
  // The plan as posted and the engines of the last start: what a complete run's results must hold.
  let lastPlan: unknown;
  let planned: { count?: number; durationS?: number } = {};
  return async (method, path, body) => {
    {
      if (path === '/visibility/clear') {
        return backend.visibilityClear
          ? { status: 200, body: await backend.visibilityClear() }
          : missing('visibility');
      }
      const stats = /^\/visibility\/get\/stats\/([^/]+)$/.exec(path);
      if (stats) {
        // Clover lets a JSON {"stat_type"} override the URL's type.
        const requested = (body as { stat_type?: string } | undefined)?.stat_type ?? stats[1];
        if (!STAT_TYPES.includes(requested as StatType))
          return { status: 400, body: `stat type must be one of ${STAT_TYPES.join(', ')}` };
        return backend.visibilityStats
          ? { status: 200, body: await backend.visibilityStats(requested as StatType) }
          : missing('visibility');
      }
      if (path === '/jmeter/gen' || path === '/jmeter/create') {
        if (method !== 'POST' && method !== 'GET') return { status: 405, body: 'use POST' };
        if (!backend.jmeterGen) return missing('jmeter');
        if (body === undefined) return { status: 400, body: 'Invalid value in test plan json/yaml' };
        const answer = await backend.jmeterGen(body);
        lastPlan = body;
        return { status: 200, body: answer };
      }
      if (path === '/jmeter/start') {
        if (!backend.jmeterStart) return missing('jmeter');
        const b = (body ?? {}) as { num_slaves?: string; slave_list?: string };
        const numSlaves = b.num_slaves === undefined ? 0 : Number(b.num_slaves);
        if (!Number.isInteger(numSlaves) || numSlaves < 0)
          return { status: 400, body: 'Invalid value in json/yaml' };
        const slaveList = b.slave_list
          ? b.slave_list
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : [];
        const answer = await backend.jmeterStart({ numSlaves, slaveList });
        planned = plannedCount(lastPlan, Math.max(1, slaveList.length));
        return { status: 200, body: answer };
      }
      const results = /^\/jmeter\/results\/([^/]+)$/.exec(path);
      if (results) {
        if (!backend.jmeterResults) return missing('jmeter');
        const kind = results[1] === 'log' ? 'log' : 'results';
        const text = await backend.jmeterResults(kind);
        return {
          status: 200,
          body: kind === 'results' ? await checkedResults(backend, text, planned) : text,
        };
      }
      return undefined;
    }
  };
}

function dispatchSdc(backend: CloverSdcBackend): CloverRoutes['handle'] {
  const missing = (what: string) => ({ status: 501, body: `${what} is not available on this server` });
  type Fn = ((body: unknown) => Promise<string>) | undefined;
  const text: Record<string, [Fn, string]> = {
    '/nginx/lb': [backend.nginxLb, 'nginx control'],
    '/nginx/server': [backend.nginxServer, 'nginx control'],
    '/snort/addrule': [backend.snortAddRule, 'snort control'],
    '/snort/start': [backend.snortStart && (() => backend.snortStart!()), 'snort control'],
    '/snort/stop': [backend.snortStop && (() => backend.snortStop!()), 'snort control'],
    '/snort/get_events': [backend.snortGetEvents, 'snort events'],
    '/collector/start': [backend.collectorStart, 'the collector'],
    '/collector/stop': [backend.collectorStop && (() => backend.collectorStop!()), 'the collector'],
    '/collector/set': [backend.collectorSet, 'the collector'],
    '/visibility/set': [backend.collectorSet, 'the collector'],
  };
  return async (_method, path, body) => {
    const route = text[path];
    const conf = /^\/visibility\/get\/([^/]+)$/.exec(path);
    if (!route && !conf) return undefined;
    try {
      if (route) {
        const [fn, what] = route;
        return fn ? { status: 200, body: await fn(body) } : missing(what);
      }
      if (!backend.visibilityConfig) return missing('the collector');
      return { status: 200, body: await backend.visibilityConfig(conf![1]) };
    } catch (err) {
      // Clover's controller answered failures as 400 with a plain-text message.
      if (err instanceof CloverError && err.exitCode === ExitCode.invalid)
        return { status: 400, body: [err.message, ...err.details].join('\n') };
      throw err;
    }
  };
}
