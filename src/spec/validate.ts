import { resolve } from 'node:path';
import { defaultImage } from '../contract/images.js';
import type { InputProblem } from '../util/errors.js';
import { validateAgainst, joinPath } from '../util/schema.js';
import { didYouMean } from '../util/suggest.js';
import { parseDurationMs, formatDuration } from '../util/units.js';
import { planDocumentProblems } from './load-plan-schema.js';
import {
  boundsProblems,
  budgetProblems,
  detectProblems,
  planFileProblems,
  referencedFileProblem,
} from './spec-checks.js';
import { registryHost } from './image-ref.js';
import { metricRuleProblems } from './metric-query.js';
import { gateRuleSchemas, releaseSpecSchema, triggerSchemas } from './schema.js';
import type { CanaryStrategy, ReleaseSpec } from './types.js';

/** Scrape interval Prometheus uses when the spec does not say (its global default). */
export const DEFAULT_PROMETHEUS_SCRAPE_MS = 15_000;

/** The canary weights a spec asks for: explicit steps, or stepWeight up to maxWeight (default 50). */
export function canaryWeights(c: CanaryStrategy): number[] {
  if (c.steps) return [...c.steps];
  const step = c.stepWeight ?? 10;
  const max = c.maxWeight ?? 50;
  const out: number[] = [];
  for (let w = step; w <= max; w += step) out.push(w);
  return out;
}

function checkCanary(c: CanaryStrategy, file: string | undefined, problems: InputProblem[]): void {
  const base = 'strategy.canary';
  if (c.steps && (c.stepWeight !== undefined || c.maxWeight !== undefined)) {
    problems.push({ file, path: base, message: 'give either "steps" or "stepWeight"/"maxWeight", not both' });
    return;
  }
  if (!c.steps && c.stepWeight === undefined) {
    problems.push({
      file,
      path: base,
      message: 'give "steps" (e.g. [10, 25, 50]) or "stepWeight" (with optional "maxWeight")',
    });
    return;
  }
  if (c.stepWeight !== undefined && c.maxWeight !== undefined && c.stepWeight > c.maxWeight) {
    problems.push({
      file,
      path: `${base}.stepWeight`,
      message: `stepWeight ${c.stepWeight} is above maxWeight ${c.maxWeight}: no step would run`,
    });
  }
  const weights = canaryWeights(c);
  weights.forEach((w, i) => {
    if (c.steps && w === 0)
      problems.push({
        file,
        path: `${base}.steps[${i}]`,
        message: 'a canary step of 0% sends no traffic to the candidate; use a weight from 1 to 100',
      });
    if (i > 0 && w <= weights[i - 1]) {
      problems.push({
        file,
        path: `${base}.steps[${i}]`,
        message: `weights must increase: ${w} follows ${weights[i - 1]}`,
      });
    }
  });
  (c.judgmentAt ?? []).forEach((w, i) => {
    if (!weights.includes(w)) {
      problems.push({
        file,
        path: `${base}.judgmentAt[${i}]`,
        message: `${w} is not one of the step weights [${weights.join(', ')}]`,
      });
    }
  });
}

function checkRules(spec: ReleaseSpec, file: string | undefined, problems: InputProblem[]): void {
  const rules = spec.gate?.rules ?? [];
  const kinds = Object.keys(gateRuleSchemas);
  rules.forEach((rule, i) => {
    const path = `gate.rules[${i}]`;
    if (rule === null || typeof rule !== 'object') return; // reported by the schema
    const [kind] = Object.keys(rule);
    if (!kind) return;
    if (!gateRuleSchemas[kind]) {
      const hint = didYouMean(kind, kinds);
      problems.push({
        file,
        path: joinPath(path, kind),
        message: `unknown rule "${kind}"${hint ? ` (did you mean "${hint}"?)` : ''}; rules are: ${kinds.join(', ')}`,
      });
      return;
    }
    const body = (rule as Record<string, unknown>)[kind] ?? {};
    const before = problems.length;
    problems.push(...validateAgainst(gateRuleSchemas[kind], body, file, joinPath(path, kind)));
    if (kind === 'conservation' && problems.length === before)
      checkHops(spec, body as ConservationBody, file, joinPath(path, kind), problems);
  });
}

type ConservationBody = { hops?: string[]; fanOut?: Record<string, number> };

/**
 * Hops name services on the request path, in order; the released service must be one of them, or the
 * per-version sum the rule checks does not exist. Fan-out can only be declared for a listed hop.
 */
function checkHops(
  spec: ReleaseSpec,
  body: ConservationBody,
  file: string | undefined,
  path: string,
  problems: InputProblem[],
): void {
  const hops = body.hops;
  const service = typeof spec.service?.name === 'string' ? spec.service.name : undefined;
  if (hops && service && !hops.includes(service)) {
    problems.push({
      file,
      path: `${path}.hops`,
      message: `the released service "${service}" must be one of the hops [${hops.join(', ')}]`,
    });
  }
  const known = hops ?? (service ? [service] : []);
  for (const hop of Object.keys(body.fanOut ?? {})) {
    if (!known.includes(hop)) {
      const hint = didYouMean(hop, known);
      problems.push({
        file,
        path: `${path}.fanOut.${hop}`,
        message: `unknown hop "${hop}"${hint ? ` (did you mean "${hint}"?)` : ''}; hops are: ${known.join(', ')}`,
      });
    }
  }
}

function checkWindows(spec: ReleaseSpec, file: string | undefined, problems: InputProblem[]): void {
  const metrics = spec.gate?.metrics;
  const scrape = metrics?.scrapeInterval
    ? parseDurationMs(metrics.scrapeInterval)
    : metrics?.source === 'prometheus'
      ? DEFAULT_PROMETHEUS_SCRAPE_MS
      : 0;
  if (!scrape) return;
  // A rate over a window needs at least two scrapes inside it, or the gate sees no data.
  const need = 2 * scrape;
  const windows: Array<[string, string | undefined]> = [
    ['strategy.canary.window', spec.strategy.canary?.window],
    ['strategy.blueGreen.previewWindow', spec.strategy.blueGreen?.previewWindow],
    ['strategy.abTest.window', spec.strategy.abTest?.window],
    ['strategy.mirror.window', spec.strategy.mirror?.window],
  ];
  for (const [path, value] of windows) {
    if (value && parseDurationMs(value) < need) {
      problems.push({
        file,
        path,
        message: `window ${value} is shorter than the gate needs: two scrapes at ${formatDuration(scrape)} take ${formatDuration(need)}`,
      });
    }
  }
}

/** Problems of the files a spec names (its load plan, its candidate manifests), resolved against `dir`. */
export function referencedFileProblems(spec: ReleaseSpec, file?: string, dir?: string): InputProblem[] {
  const problems: InputProblem[] = [];
  if (spec.load && typeof spec.load.plan === 'string')
    problems.push(...planFileProblems(spec.load.plan, resolve(dir ?? '.', spec.load.plan), file));
  for (const [i, m] of (spec.service.candidateManifests ?? []).entries()) {
    const msg = referencedFileProblem(resolve(dir ?? '.', m), 'a Kubernetes manifest');
    if (msg) problems.push({ file, path: `service.candidateManifests[${i}]`, message: msg });
  }
  return problems;
}

/**
 * Every problem in a parsed spec document. `dir` resolves relative paths (load plan, manifests); with
 * `files: false` the files the spec names are not checked (`referencedFileProblems` does that).
 */
export function validateSpec(
  doc: unknown,
  file?: string,
  dir?: string,
  opts: { files?: boolean } = {},
): InputProblem[] {
  const problems = validateAgainst(releaseSpecSchema, doc, file);
  problems.push(...boundsProblems(doc, file));
  const rules = (doc as { gate?: { rules?: unknown } } | null)?.gate?.rules;
  // Rule bodies are checked even when other sections are wrong, so one run shows every problem.
  if (Array.isArray(rules)) checkRules(doc as ReleaseSpec, file, problems);
  if (problems.length) return problems;
  const spec = doc as ReleaseSpec;
  const kinds = (['canary', 'blueGreen', 'abTest'] as const).filter((k) => spec.strategy[k]);
  if (kinds.length !== 1) {
    problems.push({
      file,
      path: 'strategy',
      message:
        kinds.length === 0
          ? 'choose one strategy: canary, blueGreen or abTest'
          : `choose one strategy, found ${kinds.join(' and ')}`,
    });
  }
  if (spec.service.stable === spec.service.candidate) {
    problems.push({
      file,
      path: 'service.candidate',
      message: `candidate version equals the stable version "${spec.service.stable}"`,
    });
  }
  if (spec.strategy.canary) checkCanary(spec.strategy.canary, file, problems);
  spec.strategy.abTest?.match.forEach((m, i) => {
    if (!m.headers && !m.cookie)
      problems.push({ file, path: `strategy.abTest.match[${i}]`, message: 'give "headers" or "cookie"' });
  });
  checkWindows(spec, file, problems);
  if (spec.gate) problems.push(...budgetProblems(spec.gate, file), ...detectProblems(spec.gate.rules, file));
  if (spec.gate || spec.metrics) problems.push(...metricRuleProblems(spec, file));
  if (spec.load && typeof spec.load.plan !== 'string')
    problems.push(...planDocumentProblems(spec.load.plan, file, 'load.plan'));
  if (opts.files !== false) problems.push(...referencedFileProblems(spec, file, dir));
  const sp = spec.spinnaker;
  if (sp) {
    if (sp.runner === 'jenkins' && !sp.jenkins)
      problems.push({
        file,
        path: 'spinnaker.jenkins',
        message: 'runner "jenkins" needs spinnaker.jenkins {master, job}',
      });
    if (sp.runner === 'runJob' && !sp.runJob)
      problems.push({
        file,
        path: 'spinnaker.runJob',
        message: `runner "runJob" needs spinnaker.runJob {namespace, serviceAccount, image (default ${defaultImage('clover-cd')})}`,
      });
    if (sp.stages === 'preconfigured' && (sp.runner ?? 'webhook') !== 'webhook')
      problems.push({
        file,
        path: 'spinnaker.stages',
        message: `"preconfigured" are webhook stages: it needs runner "webhook", found "${sp.runner}" (the Run Job form is preconfigured by \`clover-cd pipeline orca-config\` too)`,
      });
    // Spinnaker resolves secret references in its configuration files only: in pipeline JSON one is sent literally.
    if (
      sp.stageServer.auth?.spinnaker &&
      (sp.runner ?? 'webhook') === 'webhook' &&
      sp.stages !== 'preconfigured'
    ) {
      problems.push({
        file,
        path: 'spinnaker.stageServer.auth.spinnaker',
        message:
          'a Spinnaker secret reference is resolved only in Spinnaker\'s configuration files, never in pipeline JSON (an inline webhook stage would send it literally): set spinnaker.stages: preconfigured and put the reference in orca-local.yml with `clover-cd pipeline orca-config`, or remove it (README "Spinnaker stages and secrets")',
      });
    }
    (sp.triggers ?? []).forEach((t, i) => {
      const schema = triggerSchemas[(t as { type: string }).type];
      if (schema) problems.push(...validateAgainst(schema, t, file, `spinnaker.triggers[${i}]`));
      // Echo compares the trigger's repository with the event's, which never includes the registry host.
      if (t.type === 'docker' && typeof t.repository === 'string' && registryHost(t.repository)) {
        problems.push({
          file,
          path: `spinnaker.triggers[${i}].repository`,
          message: `"${t.repository}" starts with a registry host: Echo compares repository with the pushed image's repository inside its registry and would never fire; put "${registryHost(t.repository)}" in registry and the rest in repository`,
        });
      }
    });
  }
  return problems;
}
