import { resolve } from 'node:path';
import { readYamlFile } from '../spec/load.js';
import { InvalidInputError, type InputProblem } from '../util/errors.js';
import { parseDurationMs } from '../util/units.js';
import { parseCriterion } from './criteria.js';
import { planDocumentProblems } from '../spec/load-plan-schema.js';
import type { Assertion, LoadPlan, PlanRequest } from './types.js';

/**
 * Clover's plan YAML → LoadPlan. Semantics (documented in the README):
 * - loops absent = 1 (JMeter's default); 0 (Clover's "forever") and -1 (JMeter's) loop until the duration ends;
 * - duration 0 or absent = no cut-off; a finite plan also stops at the duration if it is set (JMeter scheduler);
 * - a URL without a scheme is http; scheme, port, path and query are kept as written.
 */
interface RawRequest {
  name?: string;
  url: string;
  method?: string;
  'user-agent'?: string;
  headers?: Record<string, string | number>;
  body?: unknown;
  think_time?: string | number;
  timeout?: string | number;
  assert?: {
    status?: number | string | Array<number | string>;
    contains?: string | string[];
    max_time?: string | number;
  };
}
interface RawPlan {
  load_spec: {
    num_threads: number;
    loops?: number;
    ramp_time?: number;
    duration?: number;
    throughput?: number;
    think_time?: string | number;
    timeout?: string | number;
    headers?: Record<string, string | number>;
  };
  url_list: RawRequest[];
  criteria?: string[];
}

const ms = (v: string | number | undefined): number | undefined =>
  v === undefined ? undefined : typeof v === 'number' ? v : parseDurationMs(v);
const asList = <T>(v: T | T[] | undefined): T[] | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? v : [v];

function normalizeRequest(r: RawRequest, raw: RawPlan): PlanRequest {
  const url = new URL(/^https?:\/\//i.test(r.url) ? r.url : `http://${r.url}`);
  const method = r.method ?? 'GET';
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...raw.load_spec.headers, ...r.headers })) headers[k] = String(v);
  if (r['user-agent'] !== undefined) {
    for (const k of Object.keys(headers)) if (k.toLowerCase() === 'user-agent') delete headers[k];
    headers['User-Agent'] = r['user-agent'];
  }
  let body: string | undefined;
  if (typeof r.body === 'string') body = r.body;
  else if (r.body !== undefined) {
    body = JSON.stringify(r.body);
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type'))
      headers['Content-Type'] = 'application/json';
  }
  const uaKey = Object.keys(headers).find((k) => k.toLowerCase() === 'user-agent');
  let assert: Assertion | undefined;
  if (r.assert) {
    assert = {
      status: asList(r.assert.status)?.map(String),
      contains: asList(r.assert.contains),
      maxTimeMs: ms(r.assert.max_time),
    };
  }
  return {
    label: r.name ?? `${method} ${url.pathname}`,
    url: url.href,
    method,
    userAgent: uaKey ? headers[uaKey] : undefined,
    headers,
    body,
    timeoutMs: ms(r.timeout ?? raw.load_spec.timeout),
    thinkTimeMs: ms(r.think_time ?? raw.load_spec.think_time),
    assert,
  };
}

/** Validate and normalize a plan document; `file` only names it in messages. Throws InvalidInputError (exit 2). */
export function planFromDocument(doc: unknown, file?: string): LoadPlan {
  const problems: InputProblem[] = planDocumentProblems(doc, file);
  const raw = doc as RawPlan;
  const criteria = problems.length ? [] : (raw.criteria ?? []);
  criteria.forEach((c, i) => {
    try {
      parseCriterion(c);
    } catch (err) {
      problems.push({ file, path: `criteria[${i}]`, message: (err as Error).message });
    }
  });
  if (problems.length) {
    throw new InvalidInputError(
      `${file ?? 'load plan'}: the load plan is invalid (${problems.length} problem${problems.length > 1 ? 's' : ''})`,
      problems,
    );
  }
  const ls = raw.load_spec;
  return {
    file,
    threads: ls.num_threads,
    loops: ls.loops === undefined ? 1 : ls.loops <= 0 ? -1 : ls.loops,
    rampS: ls.ramp_time ?? 0,
    durationS: ls.duration ? ls.duration : undefined,
    throughput: ls.throughput,
    requests: raw.url_list.map((r) => normalizeRequest(r, raw)),
    criteria,
  };
}

/** Load a plan from a YAML/JSON file (relative to baseDir) or from an already parsed object. */
export function loadPlan(fileOrObject: string | object, baseDir?: string): LoadPlan {
  if (typeof fileOrObject === 'string') {
    const file = resolve(baseDir ?? '.', fileOrObject);
    return planFromDocument(readYamlFile(file, 'a load plan (YAML or JSON)'), fileOrObject);
  }
  return planFromDocument(fileOrObject);
}

/** Replace scheme, host and port of every URL with `origin` (e.g. the mesh ingress); path and query stay. */
export function withTarget(plan: LoadPlan, origin: string): LoadPlan {
  let o: URL;
  try {
    o = new URL(origin);
  } catch {
    throw new InvalidInputError(`target "${origin}" is not a URL (expected e.g. http://127.0.0.1:8080)`);
  }
  if (!/^https?:$/.test(o.protocol))
    throw new InvalidInputError(`target "${origin}": expected an http:// or https:// origin`);
  return {
    ...plan,
    requests: plan.requests.map((r) => {
      const u = new URL(r.url);
      return { ...r, url: `${o.origin}${u.pathname}${u.search}` };
    }),
  };
}

/** Apply a duration override and check the plan is bounded (an endless plan needs a duration). */
export function withDuration(plan: LoadPlan, durationS?: number): LoadPlan {
  const p = durationS !== undefined ? { ...plan, durationS } : plan;
  if (p.loops < 0 && !p.durationS) {
    throw new InvalidInputError(
      `${plan.file ?? 'load plan'}: load_spec.loops ${plan.loops} loops forever; set load_spec.duration or pass --duration`,
      [
        {
          file: plan.file,
          path: 'load_spec.duration',
          message: 'required when loops is 0 or -1 (expected seconds > 0)',
        },
      ],
    );
  }
  return p;
}

/** Samples a finite plan sends: threads x loops per request (x engines); undefined for endless plans. */
export function expectedSamples(
  plan: LoadPlan,
  engines = 1,
): { total: number; byLabel: Record<string, number> } | undefined {
  if (plan.loops < 0) return undefined;
  const byLabel: Record<string, number> = {};
  for (const r of plan.requests)
    byLabel[r.label] = (byLabel[r.label] ?? 0) + plan.threads * plan.loops * engines;
  return { total: plan.threads * plan.loops * plan.requests.length * engines, byLabel };
}

/**
 * Header every load request carries, valued with the run's id, so each hop's telemetry can tell the load's
 * requests from user traffic (Istio Telemetry tagOverrides turn it into the `clover_cd_load` metric label;
 * see deploy/sdc/telemetry.yaml). The gate counts exactly these requests for conservation.
 */
export const LOAD_HEADER = 'x-clover-cd-load';

/** A short run id: time in base 36 and random hex (unique enough for a label value, short in a series). */
export function newRunId(): string {
  return `${Date.now().toString(36)}-${Math.floor(Math.random() * 0xffffff)
    .toString(16)
    .padStart(6, '0')}`;
}

/** Every request tagged with the run id (a header the plan sets itself wins). */
export function withLoadTag(plan: LoadPlan, runId: string): LoadPlan {
  return {
    ...plan,
    requests: plan.requests.map((r) =>
      Object.keys(r.headers).some((k) => k.toLowerCase() === LOAD_HEADER)
        ? r
        : { ...r, headers: { ...r.headers, [LOAD_HEADER]: runId } },
    ),
  };
}
