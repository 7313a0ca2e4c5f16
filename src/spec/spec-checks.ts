import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidInputError, type InputProblem } from '../util/errors.js';
import { parseYamlText, readInputText } from './input.js';
import { collect, durationRangeProblem, labelKeyProblem, labelValueProblem, regexProblem } from './limits.js';
import { planDocumentProblems } from './load-plan-schema.js';

/**
 * The bounds of a release spec that its schema cannot state: durations in (0, 24h], label keys and values
 * within Kubernetes' limits, A/B regular expressions that compile, a gate with rules, and the files it
 * references (a readable load plan that is a valid plan, manifests that are files). Tolerates any document
 * shape: the schema reports wrong types, these checks only look at values of the right type.
 */
type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Largest load plan a spec may reference. */
const MAX_PLAN_BYTES = 4 * 1024 * 1024;

export function boundsProblems(doc: unknown, file?: string): InputProblem[] {
  const problems: InputProblem[] = [];
  const d = obj(doc);
  if (!d) return problems;
  const checks: Array<[string, string | undefined]> = [];
  const labels = obj(obj(d.metadata)?.labels);
  for (const [k, v] of Object.entries(labels ?? {})) {
    checks.push([`metadata.labels[${JSON.stringify(k)}]`, labelKeyProblem(k) ?? labelValueProblem(v)]);
  }
  const strategy = obj(d.strategy);
  const service = obj(d.service);
  checks.push(
    ['service.readyTimeout', durationRangeProblem(service?.readyTimeout)],
    ['strategy.canary.window', durationRangeProblem(obj(strategy?.canary)?.window)],
    ['strategy.blueGreen.previewWindow', durationRangeProblem(obj(strategy?.blueGreen)?.previewWindow)],
    ['strategy.abTest.window', durationRangeProblem(obj(strategy?.abTest)?.window)],
    ['strategy.mirror.window', durationRangeProblem(obj(strategy?.mirror)?.window)],
  );
  list(obj(strategy?.abTest)?.match).forEach((m, i) => {
    const headers = obj(obj(m)?.headers);
    for (const [h, v] of Object.entries(headers ?? {}))
      checks.push([`strategy.abTest.match[${i}].headers.${h}.regex`, regexProblem(obj(v)?.regex)]);
    checks.push([`strategy.abTest.match[${i}].cookie.regex`, regexProblem(obj(obj(m)?.cookie)?.regex)]);
  });
  const gate = obj(d.gate);
  if (d.gate === undefined) {
    checks.push([
      'gate',
      'required: a release needs at least one gate rule (e.g. rules: [{errorRate: {max: 1%}}]); without one no evidence is judged and nothing may be promoted',
    ]);
  }
  checks.push(['gate.metrics.scrapeInterval', durationRangeProblem(obj(gate?.metrics)?.scrapeInterval)]);
  const load = obj(d.load);
  if (typeof load?.engines === 'number' && load.engines > 0 && load.engine === 'builtin')
    checks.push([
      'load.engines',
      "distributed engines are JMeter's own (jmeter-server): drop engine: builtin, or set engines: 0",
    ]);
  list(gate?.rules).forEach((r, i) =>
    checks.push([`gate.rules[${i}].latency.max`, durationRangeProblem(obj(obj(r)?.latency)?.max)]),
  );
  collect(file, problems, checks);
  return problems;
}

/** Why a referenced file cannot be used (missing, a directory, a device), or undefined. */
export function referencedFileProblem(abs: string, what: string): string | undefined {
  try {
    const st = statSync(abs);
    if (st.isDirectory()) return `"${abs}" is a directory; expected ${what}`;
    if (!st.isFile()) return `"${abs}" is not a regular file (a device or socket); expected ${what}`;
    return undefined;
  } catch {
    return `file not found: "${abs}"`;
  }
}

/** A load plan named by the spec: it must be a file holding a valid plan (problems name the plan file). */
export function planFileProblems(written: string, abs: string, specFile?: string): InputProblem[] {
  const bad = referencedFileProblem(abs, 'a load plan (YAML or JSON)');
  if (bad) return [{ file: specFile, path: 'load.plan', message: bad }];
  if (specFile && resolve(specFile) === abs)
    return [
      {
        file: specFile,
        path: 'load.plan',
        message: `"${written}" is this release spec itself; expected a load plan (load_spec + url_list)`,
      },
    ];
  let doc: unknown;
  try {
    doc = parseYamlText(
      readInputText(abs, { maxBytes: MAX_PLAN_BYTES, what: 'a load plan (YAML or JSON)' }),
      written,
    );
  } catch (err) {
    if (!(err instanceof InvalidInputError)) throw err;
    return [
      {
        file: specFile,
        path: 'load.plan',
        message: `"${written}" cannot be used: ${err.problems[0]?.message ?? err.message}`,
      },
    ];
  }
  const problems = planDocumentProblems(doc, written);
  if (problems.length)
    problems.unshift({
      file: specFile,
      path: 'load.plan',
      message: `"${written}" is not a valid load plan (${problems.length} problem${problems.length > 1 ? 's' : ''} below)`,
    });
  return problems;
}

/** Gate rules that run statistical tests (the ones that can fail a healthy canary on chance): they share gate.alpha. */
export const STATISTICAL_RULES = new Set([
  'split',
  'errorRate',
  'latency',
  'compareErrors',
  'compareLatency',
  'tail',
]);

/** A rule's explicit share of the false-alarm budget: its own alpha, or 1 − confidence for split. */
export function explicitAlpha(rule: unknown): number | undefined {
  const r = obj(rule);
  const kind = r ? Object.keys(r)[0] : undefined;
  const body = kind ? obj(r![kind]) : undefined;
  if (!kind || !STATISTICAL_RULES.has(kind)) return undefined;
  if (kind === 'split') return typeof body?.confidence === 'number' ? 1 - body.confidence : undefined;
  return typeof body?.alpha === 'number' ? body.alpha : undefined;
}

/** The rules' own alpha may not add up to more than gate.alpha (the budget they are taken from). */
export function budgetProblems(
  gate: { alpha?: string | number; rules?: unknown },
  file?: string,
): InputProblem[] {
  const total =
    typeof gate.alpha === 'number'
      ? gate.alpha
      : typeof gate.alpha === 'string' && /^\d+(\.\d+)?%$/.test(gate.alpha)
        ? Number(gate.alpha.slice(0, -1)) / 100
        : 0.01;
  if (!(total > 0 && total <= 0.5))
    return [
      {
        file,
        path: 'gate.alpha',
        message: `expected a false-alarm budget above 0 and at most 50% (e.g. 1%), found ${JSON.stringify(gate.alpha)}`,
      },
    ];
  const explicit = list(gate.rules)
    .map((r, i) => ({ i, a: explicitAlpha(r), kind: Object.keys(obj(r) ?? {})[0] }))
    .filter((x) => x.a !== undefined);
  const sum = explicit.reduce((s, x) => s + x.a!, 0);
  if (sum <= total + 1e-12) return [];
  const shares = explicit.map((x) => `rules[${x.i}].${x.kind} ${+(x.a! * 100).toPrecision(3)}%`).join(', ');
  return [
    {
      file,
      path: 'gate.alpha',
      message: `the rules' own alpha (and split confidence) add up to ${+(sum * 100).toPrecision(3)}% (${shares}), more than gate.alpha ${+(total * 100).toPrecision(3)}%: raise gate.alpha, lower them, or drop them and let gate.alpha be split by alphaWeight`,
    },
  ];
}

/** A rule's detect size must lie above its tolerance (maxIncrease), or a healthy canary could never pass it. */
export function detectProblems(rules: unknown, file?: string): InputProblem[] {
  const pct = (v: unknown) =>
    typeof v === 'string' && /^\d+(\.\d+)?%$/.test(v) ? Number(v.slice(0, -1)) / 100 : undefined;
  const out: InputProblem[] = [];
  list(rules).forEach((rule, i) => {
    const r = obj(rule);
    const kind = r ? Object.keys(r)[0] : undefined;
    const body = kind ? obj(r![kind]) : undefined;
    if (!body || !['compareErrors', 'compareLatency', 'tail'].includes(kind!)) return;
    const detect = pct(body.detect);
    const tolerance = pct(body.maxIncrease) ?? 0;
    for (const [field, value] of [
      ['detect', detect],
      ['routeDetect', pct(body.routeDetect)],
    ] as const) {
      if (value !== undefined && value <= tolerance) {
        out.push({
          file,
          path: `gate.rules[${i}].${kind}.${field}`,
          message: `expected a regression size above maxIncrease ${body.maxIncrease ?? '0%'} (the rule passes once a regression this large is ruled out; at or below the tolerance no healthy canary could pass), found ${String(body[field])}`,
        });
      }
    }
  });
  return out;
}
