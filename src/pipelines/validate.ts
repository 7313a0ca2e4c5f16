// Over 400 lines: the validator's passes over one config (structure, parameters, triggers, graph, stages, artifacts).
/**
 * `clover-cd pipeline validate`: every rule of this module over a single config, a list of configs, or a
 * Dinghy wrapper `{application, pipelines:[...]}`. Pure: document in, problems out. Errors are what Orca,
 * Front50 or Echo would reject or silently mis-run; warnings are what they tolerate, each with the reason.
 */
import { checkExpectedArtifacts } from './artifacts.js';
import { checkGraph, isUpstream, readGraph, type GraphNode } from './graph.js';
import { expressionSyntaxProblems, stageReferences, stringsIn } from './spel.js';
import { RESERVED_NAMES } from './stage-types.js';
import { checkStageFields } from './stage-rules.js';
import { checkDockerTriggerArtifacts, checkTrigger } from './triggers.js';
import { DOCUMENT_LIMITS, structureProblems } from '../util/bounds.js';
import type { InputProblem } from '../util/errors.js';
import type { PipelineDocumentKind, PipelineProblem } from './types.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

export interface PipelineValidation {
  kind: PipelineDocumentKind;
  pipelines: Array<{ name: string; stages: number; errors: number; warnings: number }>;
  problems: PipelineProblem[];
  errors: number;
  warnings: number;
}

/** Classify a parsed document: a config, a list of configs, or a Dinghy wrapper. */
export function documentKind(doc: unknown): PipelineDocumentKind | undefined {
  if (Array.isArray(doc)) return 'list';
  if (!isObj(doc)) return undefined;
  if (Array.isArray(doc.pipelines) && !('stages' in doc)) return 'dinghyfile';
  return 'config';
}

const NO_PIPELINE = 'an empty list holds no pipeline; expected at least one pipeline config object';

export function validatePipelineDocument(doc: unknown): PipelineValidation {
  const kind = documentKind(doc);
  const problems: PipelineProblem[] = [];
  // Depth and size first: every rule below walks the document, and a stage nested 5,000 deep must be a
  // problem report, not a stack overflow.
  const bounds = structureProblems(doc, undefined, DOCUMENT_LIMITS);
  if (bounds.length) {
    for (const b of bounds)
      problems.push({
        severity: 'error',
        pipeline: '(document)',
        path: b.path,
        rule: 'document-bounds',
        message: b.message,
      });
    return summarize(kind ?? 'config', [], problems);
  }
  if (!kind) {
    problems.push({
      severity: 'error',
      pipeline: '(document)',
      path: '',
      rule: 'document-shape',
      message: `expected a pipeline config object, an array of configs, or a Dinghy {application, pipelines:[...]}, found ${doc === null ? 'null' : typeof doc}`,
    });
    return summarize('config', [], problems);
  }
  let configs: Array<{ config: unknown; base: string; application?: string }>;
  if (kind === 'list') {
    configs = (doc as unknown[]).map((config, i) => ({ config, base: `[${i}]` }));
    if (!configs.length)
      problems.push({
        severity: 'error',
        pipeline: '(document)',
        path: '',
        rule: 'document-shape',
        message: NO_PIPELINE,
      });
  } else if (kind === 'dinghyfile') {
    const d = doc as Obj;
    const application = typeof d.application === 'string' ? d.application : undefined;
    if (!application)
      problems.push({
        severity: 'error',
        pipeline: '(dinghyfile)',
        path: 'application',
        rule: 'dinghy-application',
        message: 'a dinghyfile needs "application": Dinghy saves every pipeline into it',
      });
    configs = (d.pipelines as unknown[]).map((config, i) => ({
      config,
      base: `pipelines[${i}]`,
      application,
    }));
    if (!configs.length)
      problems.push({
        severity: 'error',
        pipeline: '(dinghyfile)',
        path: 'pipelines',
        rule: 'document-shape',
        message: NO_PIPELINE,
      });
  } else configs = [{ config: doc, base: '' }];

  const summaries: PipelineValidation['pipelines'] = [];
  const namesSeen = new Map<string, string>();
  configs.forEach(({ config, base, application }, i) => {
    const own = validatePipeline(config, { base, inheritedApplication: application, index: i });
    const p = isObj(config) ? config : {};
    const name = typeof p.name === 'string' ? p.name : `#${i}`;
    // Front50 keeps names unique per application, ignoring case.
    const key = `${String(p.application ?? application ?? '')}/${name.trim().toLowerCase()}`;
    if (typeof p.name === 'string' && namesSeen.has(key)) {
      own.push({
        severity: 'warning',
        pipeline: name,
        path: join(base, 'name'),
        rule: 'pipeline-name-unique',
        message: `another pipeline in this document (${namesSeen.get(key)}) has the same name (case-insensitive): saving both without distinct ids makes Front50 reject the second or update the first`,
      });
    } else namesSeen.set(key, base || '(root)');
    problems.push(...own);
    summaries.push({
      name,
      stages: Array.isArray(p.stages) ? p.stages.length : 0,
      errors: own.filter((x) => x.severity === 'error').length,
      warnings: own.filter((x) => x.severity === 'warning').length,
    });
  });
  return summarize(kind, summaries, problems);
}

function summarize(
  kind: PipelineDocumentKind,
  pipelines: PipelineValidation['pipelines'],
  problems: PipelineProblem[],
): PipelineValidation {
  const errors = problems.filter((p) => p.severity === 'error').length;
  return { kind, pipelines, problems, errors, warnings: problems.length - errors };
}

const join = (base: string, key: string) => (base ? `${base}.${key}` : key);

export function validatePipeline(
  config: unknown,
  opts: { base?: string; inheritedApplication?: string; index?: number } = {},
): PipelineProblem[] {
  const base = opts.base ?? '';
  const problems: PipelineProblem[] = [];
  if (!isObj(config)) {
    problems.push({
      severity: 'error',
      pipeline: `#${opts.index ?? 0}`,
      path: base,
      rule: 'pipeline-object',
      message: 'a pipeline config must be a JSON object',
    });
    return problems;
  }
  const p = config;
  const pipeline = typeof p.name === 'string' && p.name ? p.name : `#${opts.index ?? 0}`;
  const add = (x: Omit<PipelineProblem, 'pipeline'>) => problems.push({ pipeline, ...x });
  const top = (severity: PipelineProblem['severity'], key: string, rule: string, message: string) =>
    add({ severity, path: join(base, key), rule, message });
  const templated = p.type === 'templatedPipeline' || p.schema === 'v2';

  // Structure
  for (const key of ['application', 'name'] as const) {
    const v = p[key];
    const inherited = key === 'application' && opts.inheritedApplication;
    if (v === undefined) {
      if (!inherited)
        top(
          'error',
          key,
          'pipeline-identity',
          `no "${key}": Front50 refuses to save a pipeline without it ("A pipeline requires name and application fields"); expected a non-empty string`,
        );
    } else if (typeof v !== 'string' || v.trim() === '')
      top('error', key, 'pipeline-identity', `expected a non-empty string, found ${JSON.stringify(v)}`);
    else if (key === 'name' && v !== v.trim())
      top(
        'warning',
        key,
        'pipeline-identity',
        'leading/trailing spaces: Front50 trims the name, so lookups by the untrimmed name fail',
      );
  }
  if (p.id !== undefined && typeof p.id !== 'string')
    top('error', 'id', 'pipeline-id', `expected a string id, found ${JSON.stringify(p.id)}`);
  if (p.spelEvaluator === undefined)
    top(
      'warning',
      'spelEvaluator',
      'spel-v4',
      'not set: Orca falls back to the v3 evaluator (expressions evaluated as soon as possible); set "v4"',
    );
  else if (p.spelEvaluator === 'v3')
    top(
      'warning',
      'spelEvaluator',
      'spel-v4',
      '"v3" evaluates expressions as soon as possible; "v4" is what Deck creates and what stage-start semantics need',
    );
  else if (p.spelEvaluator !== 'v4')
    top(
      'error',
      'spelEvaluator',
      'spel-v4',
      `expected "v4" (or "v3"), found ${JSON.stringify(p.spelEvaluator)}`,
    );
  for (const key of ['limitConcurrent', 'keepWaitingPipelines', 'disabled']) {
    const v = p[key];
    if (v === undefined || typeof v === 'boolean') continue;
    top(
      v === 'true' || v === 'false' ? 'warning' : 'error',
      key,
      'boolean-field',
      `expected a JSON boolean, found ${JSON.stringify(v)}${key === 'limitConcurrent' ? ' (Orca parses the text "true"; anything else counts as false)' : ''}`,
    );
  }
  if (p.maxConcurrentExecutions !== undefined && !Number.isInteger(p.maxConcurrentExecutions)) {
    const numeric = /^\d+$/.test(String(p.maxConcurrentExecutions));
    top(
      numeric ? 'warning' : 'error',
      'maxConcurrentExecutions',
      'number-field',
      `expected an integer, found ${JSON.stringify(p.maxConcurrentExecutions)}${numeric ? '' : ": Orca's Integer.parseInt throws"}`,
    );
  }
  if (p.disabled === true)
    top('warning', 'disabled', 'pipeline-disabled', 'the pipeline is disabled: Orca refuses to start it');
  for (const key of ['stages', 'triggers', 'notifications', 'parameterConfig', 'expectedArtifacts']) {
    const v = p[key];
    if (v === undefined) {
      if (key === 'stages' && !templated)
        top('error', key, 'stages-array', 'missing: Orca fails with "null stages in pipeline"');
    } else if (!Array.isArray(v))
      top(
        'error',
        key,
        `${key === 'stages' ? 'stages' : 'field'}-array`,
        `expected an array, found ${v === null ? 'null' : typeof v}`,
      );
  }
  const stages = Array.isArray(p.stages) ? p.stages : [];
  if (Array.isArray(p.stages) && stages.length === 0 && !templated)
    top(
      'warning',
      'stages',
      'stages-array',
      'no stages: an execution ends TERMINAL with "No initial stages found"',
    );

  // Parameters
  if (Array.isArray(p.parameterConfig)) {
    p.parameterConfig.forEach((param, i) => {
      const path = join(base, `parameterConfig[${i}]`);
      if (!isObj(param) || typeof param.name !== 'string' || !param.name)
        return add({
          severity: 'error',
          path: `${path}.name`,
          rule: 'parameter',
          message: 'each parameter needs a name',
        });
      if (RESERVED_NAMES.has(param.name))
        add({
          severity: 'warning',
          path: `${path}.name`,
          rule: 'reserved-name',
          message: `"${param.name}" is reserved in Orca/Deck and breaks other stages`,
        });
      if (
        param.required === true &&
        (param.default === undefined || param.default === null || param.default === '')
      )
        add({
          severity: 'warning',
          path: `${path}.default`,
          rule: 'parameter-required',
          message:
            'required without a default: Gate rejects every start that does not pass it, including automated triggers',
        });
    });
  }
  if (Array.isArray(p.notifications)) {
    p.notifications.forEach((n, i) => {
      const path = join(base, `notifications[${i}]`);
      if (!isObj(n) || typeof n.type !== 'string')
        add({
          severity: 'error',
          path: `${path}.type`,
          rule: 'notification',
          message: 'each notification needs a type',
        });
      else if (n.when !== undefined && !Array.isArray(n.when))
        add({
          severity: 'error',
          path: `${path}.when`,
          rule: 'notification',
          message: 'expected an array such as ["pipeline.failed"]',
        });
    });
  }

  // Triggers
  if (Array.isArray(p.triggers)) {
    p.triggers.forEach((t, i) =>
      checkTrigger(t, join(base, `triggers[${i}]`), (severity, path, rule, message) =>
        add({ severity, path, rule, message }),
      ),
    );
  }

  // Graph
  const stagesPath = join(base, 'stages');
  const graphReport = (x: Omit<PipelineProblem, 'pipeline'>) => add(x);
  const nodes = readGraph(stages, stagesPath, graphReport);
  checkGraph(nodes, stagesPath, graphReport);
  // Only strings that can hold SpEL matter below; collect them once per stage.
  const expressions = stages.map((raw) =>
    [...stringsIn(raw)].filter(([, text]) => text.includes('${') || text.includes('#')),
  );
  checkNamesAndReferences(stages, nodes, expressions, stagesPath, add);

  // Stage fields
  stages.forEach((raw, i) => {
    const node = nodes[i];
    const stage = { index: i, refId: node?.refId, name: node?.name };
    if (!isObj(raw))
      return add({
        severity: 'error',
        stage,
        path: `${stagesPath}[${i}]`,
        rule: 'stage-object',
        message: 'a stage must be a JSON object',
      });
    checkStageFields(raw, (severity, field, rule, message) =>
      add({ severity, stage, path: `${stagesPath}[${i}].${field}`, rule, message }),
    );
    const skipManifests = raw.skipExpressionEvaluation === true;
    for (const [field, text] of expressions[i]) {
      if (skipManifests && /^(manifests?|patchBody)\b/.test(field)) continue;
      for (const msg of expressionSyntaxProblems(text))
        add({
          severity: 'warning',
          stage,
          path: `${stagesPath}[${i}].${field}`,
          rule: 'spel-syntax',
          message: msg,
        });
    }
  });

  checkArtifacts(p, stages, nodes, base, add);
  checkExpectedArtifacts(p, base, add);
  checkDockerTriggerArtifacts(p, base, (severity, path, rule, message) =>
    add({ severity, path, rule, message }),
  );
  return problems;
}

/** Stage names unique and literal #stage/#judgment/#stageByRefId references upstream. */
function checkNamesAndReferences(
  stages: unknown[],
  nodes: GraphNode[],
  expressions: Array<Array<[string, string]>>,
  base: string,
  add: (x: Omit<PipelineProblem, 'pipeline'>) => void,
): void {
  const byName = new Map<string, GraphNode[]>();
  const byRef = new Map<string, GraphNode>();
  for (const n of nodes) {
    if (n.name !== undefined) {
      const list = byName.get(n.name);
      if (list) list.push(n);
      else byName.set(n.name, [n]);
    }
    if (n.refId !== undefined && !byRef.has(n.refId)) byRef.set(n.refId, n);
  }
  for (const [name, list] of byName) {
    if (list.length > 1)
      for (const n of list.slice(1)) {
        add({
          severity: 'warning',
          stage: n,
          path: `${base}[${n.index}].name`,
          rule: 'stage-name-unique',
          message: `stage name "${name}" is also used by stage ${list[0].index} (refId "${list[0].refId}"): #stage('${name}') returns the first one`,
        });
      }
  }
  stages.forEach((raw, i) => {
    const node = nodes[i];
    if (!node || !isObj(raw)) return;
    for (const [field, text] of expressions[i]) {
      for (const ref of stageReferences(text)) {
        const path = `${base}[${i}].${field}`;
        const targets =
          ref.fn === 'stageByRefId'
            ? [byRef.get(ref.target)].filter((x): x is GraphNode => !!x)
            : (byName.get(ref.target) ?? []);
        const call = `#${ref.fn}('${ref.target}')`;
        if (targets.length === 0) {
          add({
            severity: 'error',
            stage: node,
            path,
            rule: 'spel-stage-reference',
            message: `${call} names no stage in this pipeline: the expression fails at evaluation time`,
          });
        } else if (!isUpstream(node, targets, byRef)) {
          add({
            severity: 'error',
            stage: node,
            path,
            rule: 'spel-stage-upstream',
            message: `${call} refers to stage refId "${targets[0].refId}", which is not upstream of this stage: its values are missing (or stale) when this expression is evaluated`,
          });
        } else if (
          ref.fn === 'judgment' &&
          !targets.some((t) => isObj(stages[t.index]) && (stages[t.index] as Obj).type === 'manualJudgment')
        ) {
          add({
            severity: 'error',
            stage: node,
            path,
            rule: 'spel-judgment',
            message: `${call} names a stage that is not a manualJudgment`,
          });
        }
      }
    }
  });
}

/** Expected-artifact ids unique and every reference declared. */
function checkArtifacts(
  p: Obj,
  stages: unknown[],
  nodes: GraphNode[],
  base: string,
  add: (x: Omit<PipelineProblem, 'pipeline'>) => void,
): void {
  const declared = new Map<string, string>();
  const declare = (list: unknown, where: string) => {
    if (!Array.isArray(list)) return;
    list.forEach((a, i) => {
      if (!isObj(a))
        return add({
          severity: 'error',
          path: `${where}[${i}]`,
          rule: 'artifact-object',
          message: `expected an expected-artifact object {"id": ..., "matchArtifact": {...}}, found ${a === null ? 'null' : Array.isArray(a) ? 'an array' : `${typeof a} ${JSON.stringify(a)}`}`,
        });
      if (typeof a.id !== 'string' || a.id === '')
        return add({
          severity: 'error',
          path: `${where}[${i}].id`,
          rule: 'artifact-id',
          message:
            a.id === undefined
              ? 'required: stages and triggers refer to an expected artifact by its id'
              : `expected a non-empty id string, found ${JSON.stringify(a.id)}`,
        });
      if (declared.has(a.id))
        add({
          severity: 'error',
          path: `${where}[${i}].id`,
          rule: 'artifact-id-unique',
          message: `expected artifact id "${a.id}" is declared twice (also ${declared.get(a.id)})`,
        });
      else declared.set(a.id, `${where}[${i}]`);
    });
  };
  declare(p.expectedArtifacts, join(base, 'expectedArtifacts'));
  stages.forEach(
    (s, i) => isObj(s) && declare(s.expectedArtifacts, `${join(base, 'stages')}[${i}].expectedArtifacts`),
  );
  const check = (id: unknown, path: string, stage?: PipelineProblem['stage']) => {
    if (typeof id !== 'string' || id === '' || id.includes('${')) return;
    if (!declared.has(id))
      add({
        severity: 'error',
        stage,
        path,
        rule: 'artifact-declared',
        message: `artifact id "${id}" is not declared in expectedArtifacts (pipeline or stage): "Unmatched expected artifact" at run time`,
      });
  };
  if (Array.isArray(p.triggers))
    p.triggers.forEach((t, i) => {
      if (isObj(t) && Array.isArray(t.expectedArtifactIds))
        t.expectedArtifactIds.forEach((id, j) =>
          check(id, join(base, `triggers[${i}].expectedArtifactIds[${j}]`)),
        );
    });
  stages.forEach((raw, i) => {
    if (!isObj(raw)) return;
    const stage = { index: i, refId: nodes[i]?.refId, name: nodes[i]?.name };
    const at = (f: string) => `${join(base, 'stages')}[${i}].${f}`;
    if (raw.source === 'artifact' || raw.manifestArtifactId)
      check(raw.manifestArtifactId, at('manifestArtifactId'), stage);
    check(raw.consumeArtifactId, at('consumeArtifactId'), stage);
    if (Array.isArray(raw.requiredArtifactIds))
      raw.requiredArtifactIds.forEach((id, j) => check(id, at(`requiredArtifactIds[${j}]`), stage));
    if (Array.isArray(raw.requiredArtifacts))
      raw.requiredArtifacts.forEach(
        (r, j) =>
          isObj(r) && check(r.expectedArtifactId, at(`requiredArtifacts[${j}].expectedArtifactId`), stage),
      );
    if (Array.isArray(raw.inputArtifacts))
      raw.inputArtifacts.forEach((r, j) => isObj(r) && check(r.id, at(`inputArtifacts[${j}].id`), stage));
    if (Array.isArray(raw.expectedArtifactIds))
      raw.expectedArtifactIds.forEach((id, j) => check(id, at(`expectedArtifactIds[${j}]`), stage));
  });
}

export function formatPipelineProblem(p: PipelineProblem, file?: string): string {
  const where = [
    file,
    `pipeline "${p.pipeline}"`,
    p.stage
      ? `stage refId ${p.stage.refId !== undefined ? `"${p.stage.refId}"` : `#${p.stage.index}`}${p.stage.name ? ` ("${p.stage.name}")` : ''}`
      : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  return `${p.severity}: ${where}: ${p.path || '(root)'}: ${p.message} [${p.rule}]`;
}

/** The same problem in the shape the CLI's InvalidInputError prints. */
export function toInputProblem(p: PipelineProblem, file?: string): InputProblem {
  const stage = p.stage
    ? `, stage refId ${p.stage.refId !== undefined ? `"${p.stage.refId}"` : `#${p.stage.index}`}${p.stage.name ? ` ("${p.stage.name}")` : ''}`
    : '';
  return {
    file,
    path: p.path,
    subject: `pipeline "${p.pipeline}"${stage}`,
    message: `${p.message} [${p.rule}]`,
    severity: p.severity,
  };
}
