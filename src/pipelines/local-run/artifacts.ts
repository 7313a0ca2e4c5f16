/**
 * What Echo and Orca do with a trigger before the first stage starts (reference §1.1, §4.2, §4.8), and what
 * Clouddriver does with a deployManifest's required artifacts:
 * - parameter defaults: `trigger.parameters[name] ??= default`; a required parameter without either refuses;
 * - a docker event carries a `docker/image` artifact named `<registry>/<repository>` (Echo), and fires only when
 *   the tag matches the trigger's pattern (full match);
 * - every expected artifact is bound to an incoming one (type/name/version/location/reference as full-match
 *   regexes), else to its default (its expressions evaluated with trigger and parameters), else — when the firing
 *   trigger expects it — the execution fails at start ("Unmatched expected artifact");
 * - a deployManifest binds its required artifacts: a container image equal to a docker/image artifact's name is
 *   replaced by its reference.
 */
import type { KubeObject } from '../../services/platform.js';
import { InvalidInputError } from '../../util/errors.js';
import { resolveExpressions, type SpelContext } from './spel.js';

export interface Artifact {
  type: string;
  name?: string;
  version?: string;
  location?: string;
  reference?: string;
  [k: string]: unknown;
}
interface ExpectedArtifact {
  id: string;
  matchArtifact?: Partial<Artifact>;
  useDefaultArtifact?: boolean;
  defaultArtifact?: Artifact;
}

type Obj = Record<string, unknown>;
const MATCH_FIELDS = ['type', 'name', 'version', 'location', 'reference'] as const;

export function artifactMatches(match: Partial<Artifact>, a: Artifact): boolean {
  return MATCH_FIELDS.every((f) => {
    const pattern = match[f];
    if (pattern === undefined || pattern === null || pattern === '') return true;
    return new RegExp(`^(?:${String(pattern)})$`).test(String(a[f] ?? ''));
  });
}

/** The docker trigger of `pipeline` that an event for `tag` fires, and the artifact Echo attaches. */
function dockerEvent(pipeline: Obj, trigger: Obj): Obj {
  const triggers = ((pipeline.triggers as Obj[] | undefined) ?? []).filter((t) => t.type === 'docker' && t.enabled !== false);
  const t = triggers.find((x) => !trigger.repository || x.repository === trigger.repository);
  if (!t) throw new InvalidInputError('a docker trigger run needs a pipeline with an enabled docker trigger', [{ path: 'triggers', message: 'no docker trigger' }]);
  const tag = String(trigger.tag);
  if (typeof t.tag === 'string' && t.tag && !new RegExp(`^(?:${t.tag})$`).test(tag)) {
    throw new InvalidInputError(`tag "${tag}" does not match the docker trigger's tag pattern ${JSON.stringify(t.tag)}: Echo would not start the pipeline`, [{ path: 'trigger.tag', message: `expected a tag matching ${t.tag}` }]);
  }
  const name = t.registry ? `${t.registry}/${t.repository}` : String(t.repository);
  const artifact: Artifact = { type: 'docker/image', name, version: tag, reference: `${name}:${tag}` };
  return { ...trigger, account: t.account, registry: t.registry, repository: t.repository, expectedArtifactIds: t.expectedArtifactIds ?? [], artifacts: [...((trigger.artifacts as Artifact[] | undefined) ?? []), artifact] };
}

export interface PreparedTrigger {
  trigger: Obj;
  /** Expected artifact id → the artifact bound to it. */
  bound: Map<string, Artifact>;
}

/** The trigger as the first stage sees it, and the bound expected artifacts; exit 2 when Orca would not start. */
export function prepareTrigger(pipeline: Obj, given: Obj | undefined, spel: (trigger: Obj) => SpelContext): PreparedTrigger {
  let trigger: Obj = { type: 'manual', user: 'clover-cd', ...(given ?? {}) };
  if (trigger.type === 'docker' && trigger.tag !== undefined) trigger = dockerEvent(pipeline, trigger);
  const parameters: Record<string, unknown> = { ...((trigger.parameters as Obj | undefined) ?? {}) };
  for (const p of (pipeline.parameterConfig as Obj[] | undefined) ?? []) {
    const name = String(p.name);
    if (parameters[name] === undefined && p.default !== undefined && p.default !== null) parameters[name] = p.default;
    if (parameters[name] === undefined && p.required === true) throw new InvalidInputError(`Required parameter ${name} is missing (Gate refuses the start)`, [{ path: `parameters.${name}`, message: 'required' }]);
  }
  trigger = { ...trigger, parameters };
  const incoming = (trigger.artifacts as Artifact[] | undefined) ?? [];
  const expectedIds = new Set((trigger.expectedArtifactIds as string[] | undefined) ?? []);
  const bound = new Map<string, Artifact>();
  for (const raw of (pipeline.expectedArtifacts as ExpectedArtifact[] | undefined) ?? []) {
    const failures: string[] = [];
    const e = resolveExpressions(raw, spel(trigger), failures);
    if (failures.length) throw new InvalidInputError(`expected artifact "${raw.id}": ${failures.join('; ')}`);
    const hit = incoming.find((a) => artifactMatches(e.matchArtifact ?? {}, a));
    if (hit) bound.set(e.id, hit);
    else if (e.useDefaultArtifact && e.defaultArtifact) bound.set(e.id, e.defaultArtifact);
    else if (expectedIds.has(e.id)) throw new InvalidInputError(`Unmatched expected artifact ${JSON.stringify(e.matchArtifact)} could not be resolved (id "${e.id}")`);
  }
  trigger.resolvedExpectedArtifacts = [...bound].map(([id, boundArtifact]) => ({ id, boundArtifact }));
  trigger.artifacts = [...incoming, ...[...bound.values()].filter((a) => !incoming.includes(a))];
  return { trigger, bound };
}

/** The artifacts a deployManifest requires: by expected-artifact id, or inline. TERMINAL when one is unbound. */
export function requiredArtifacts(ctx: Obj, bound: Map<string, Artifact>): Artifact[] {
  const out: Artifact[] = [];
  const byId = (id: string) => {
    const a = bound.get(id);
    if (!a) throw new Error(`required artifact "${id}" is not bound in this execution (no trigger artifact and no default)`);
    out.push(a);
  };
  for (const id of (ctx.requiredArtifactIds as string[] | undefined) ?? []) byId(id);
  for (const r of (ctx.requiredArtifacts as Obj[] | undefined) ?? []) {
    if (typeof r.expectedArtifactId === 'string') byId(r.expectedArtifactId);
    else if (r.artifact && typeof r.artifact === 'object') out.push(r.artifact as Artifact);
  }
  return out;
}

/** Clouddriver's docker image binding: a container image equal to the artifact's name becomes its reference. */
export function bindArtifacts(manifests: KubeObject[], artifacts: Artifact[]): { manifests: KubeObject[]; bound: Artifact[] } {
  const images = artifacts.filter((a) => a.type === 'docker/image' && a.name && a.reference);
  const used = new Set<Artifact>();
  const bindPod = (pod: Obj | undefined) => {
    for (const key of ['containers', 'initContainers']) {
      for (const c of (pod?.[key] as Obj[] | undefined) ?? []) {
        const a = images.find((x) => x.name === c.image);
        if (a) {
          c.image = a.reference;
          used.add(a);
        }
      }
    }
  };
  const out = manifests.map((m) => {
    const copy = JSON.parse(JSON.stringify(m)) as KubeObject;
    const spec = copy.spec as Obj | undefined;
    bindPod((spec?.template as Obj | undefined)?.spec as Obj | undefined);
    bindPod(((spec?.jobTemplate as Obj | undefined)?.spec as Obj | undefined)?.template ? (((spec!.jobTemplate as Obj).spec as Obj).template as Obj).spec as Obj : undefined);
    if (copy.kind === 'Pod') bindPod(spec);
    return copy;
  });
  return { manifests: out, bound: [...used] };
}
