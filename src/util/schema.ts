import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ErrorObject, Options, ValidateFunction } from 'ajv';
import type { InputProblem } from './errors.js';
import { ajvPackage } from './lazy-packages.js';
import { didYouMean } from './suggest.js';

/**
 * Schema validation with messages a person can act on: the field path in the document's own terms
 * (`strategy.canary.steps[2]`), what was expected, what was found, and a "did you mean" for unknown keys.
 * Shared by the release spec, JMeter plans and any other YAML input.
 */
// Ajv's code optimisation passes cost more than they save here: a schema is compiled once per process and
// validates a handful of documents, and the release spec's schema compiles in a quarter of the time without
// them (a CLI process starts faster).
export const AJV_OPTIONS: Options = {
  allErrors: true,
  strict: false,
  allowUnionTypes: true,
  verbose: true,
  code: { optimize: false },
};

/** A schema's identity across processes: the build keys its precompiled validators by it. */
export function schemaKey(schema: object): string {
  return createHash('sha256').update(JSON.stringify(schema)).digest('hex').slice(0, 32);
}

/**
 * The validators `npm run build` generated (util/schema-precompile.ts): compiling the release spec's schema
 * took 90-190 ms of every CLI process that reads a spec, plus loading ajv. Absent when running the sources;
 * a schema changed since the build has another key and is compiled here, so neither can give a stale answer.
 */
function loadPrecompiled(): Record<string, ValidateFunction> {
  try {
    return createRequire(import.meta.url)('./schema-validators.cjs') as Record<string, ValidateFunction>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return {};
    throw err;
  }
}
let precompiled: Record<string, ValidateFunction> | undefined;
let ajv: InstanceType<ReturnType<typeof ajvPackage>['Ajv']> | undefined;
const cache = new WeakMap<object, ValidateFunction>();

function validatorFor(schema: object): ValidateFunction {
  let validate = cache.get(schema);
  if (!validate) {
    precompiled ??= loadPrecompiled();
    validate = precompiled[schemaKey(schema)];
    if (!validate) validate = (ajv ??= new (ajvPackage().Ajv)(AJV_OPTIONS)).compile(schema);
    cache.set(schema, validate);
  }
  return validate;
}

export function toFieldPath(instancePath: string): string {
  if (!instancePath) return '';
  return instancePath
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
}

export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base ? `${base}.${key}` : key;
}

export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing (no value given)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array (${JSON.stringify(v).slice(0, 60)})`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string')
    return v.length > 60 ? `a string of ${v.length} characters ("${v.slice(0, 40)}...")` : `string "${v}"`;
  return `${typeof v} ${String(v)}`;
}

function valueAt(root: unknown, instancePath: string): unknown {
  let cur: unknown = root;
  for (const seg of instancePath.split('/').slice(1)) {
    if (cur == null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

function expectation(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  const desc = (e.parentSchema as { description?: string } | undefined)?.description;
  switch (e.keyword) {
    case 'type':
      return `expected ${p.type}`;
    case 'enum':
      return `expected one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `expected ${JSON.stringify(p.allowedValue)}`;
    case 'pattern':
      return `expected ${desc ?? `a value matching ${p.pattern}`}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `expected a number ${p.comparison} ${p.limit}`;
    case 'minItems':
      return `expected at least ${p.limit} item(s)`;
    case 'maxItems':
      return `expected at most ${p.limit} item(s)`;
    case 'minLength':
      return p.limit === 1 ? 'expected a non-empty string' : `expected at least ${p.limit} characters`;
    case 'maxLength':
      return `expected at most ${p.limit} characters`;
    case 'minProperties':
      return `expected at least ${p.limit} key(s)`;
    case 'maxProperties':
      return `expected at most ${p.limit} key(s)`;
    default:
      return `expected ${e.message ?? 'a valid value'}`;
  }
}

export function validateAgainst(schema: object, doc: unknown, file?: string, basePath = ''): InputProblem[] {
  return problemsOf(validatorFor(schema), doc, file, basePath);
}

/** What `validate` finds in `doc`, as problems a person can act on. */
export function problemsOf(
  validate: ValidateFunction,
  doc: unknown,
  file?: string,
  basePath = '',
): InputProblem[] {
  if (validate(doc)) return [];
  const problems: InputProblem[] = [];
  const seen = new Set<string>();
  for (const e of validate.errors ?? []) {
    // oneOf/anyOf summaries repeat the branch errors; the branch errors are more specific.
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if') continue;
    const path = [basePath, toFieldPath(e.instancePath)].filter(Boolean).join('.');
    let problem: InputProblem;
    if (e.keyword === 'additionalProperties') {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      const hint = didYouMean(key, known);
      problem = {
        file,
        path: joinPath(path, key),
        message: `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; allowed here: ${known.join(', ')}`,
      };
    } else if (e.keyword === 'required') {
      const key = (e.params as { missingProperty: string }).missingProperty;
      problem = { file, path: joinPath(path, key), message: 'required field is missing' };
    } else {
      const found = valueAt(doc, e.instancePath);
      problem = { file, path, message: `${expectation(e)}, found ${describeValue(found)}` };
    }
    const key = `${problem.path}|${problem.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(problem);
    }
  }
  // Keep type errors from a oneOf only when no more precise error exists at the same path.
  return problems;
}
