/**
 * What Orca does with a trigger before the first stage starts (test/conformance/kork-artifact-matching.json), after
 * Echo fired it (trigger-events.ts), and what Clouddriver does with a deployManifest's required artifacts:
 * - parameter defaults: `trigger.parameters[name] ??= default`; a required parameter without either refuses;
 * - expected artifacts whose id the trigger lists, or that use a default or prior artifact, are resolved: from the
 *   trigger's artifacts (exactly one may match), else the default (its expressions evaluated with trigger and
 *   parameters); one that cannot be resolved fails the execution at start ("Unmatched expected artifact");
 * - a deployManifest binds its required artifacts: a container image equal to a docker/image artifact's name is
 *   replaced by its reference.
 */
import type { KubeObject } from '../../services/platform.js';
import { InvalidInputError } from '../../util/errors.js';
import { artifactMatches, type Artifact } from '../artifact-match.js';
import { resolveExpressions, type SpelContext } from './spel.js';
import { fireTrigger, type TriggerEvent } from './trigger-events.js';

export type { Artifact };
interface ExpectedArtifact {
  id: string;
  matchArtifact?: Partial<Artifact>;
  useDefaultArtifact?: boolean;
  usePriorArtifact?: boolean;
  defaultArtifact?: Artifact;
}

type Obj = Record<string, unknown>;

export interface PreparedTrigger {
  trigger: Obj;
  /** Expected artifact id → the artifact bound to it. */
  bound: Map<string, Artifact>;
}

/** The trigger as the first stage sees it, and the bound expected artifacts; exit 2 when Echo or Orca would not start. */
export function prepareTrigger(
  pipeline: Obj,
  given: TriggerEvent | undefined,
  spel: (trigger: Obj) => SpelContext,
): PreparedTrigger {
  let { trigger } = fireTrigger(pipeline, given);
  const parameters: Record<string, unknown> = { ...((trigger.parameters as Obj | undefined) ?? {}) };
  for (const p of (pipeline.parameterConfig as Obj[] | undefined) ?? []) {
    const name = String(p.name);
    if (parameters[name] === undefined && p.default !== undefined && p.default !== null)
      parameters[name] = p.default;
    if (parameters[name] === undefined && p.required === true)
      throw new InvalidInputError(`Required parameter ${name} is missing (Gate refuses the start)`, [
        { path: `parameters.${name}`, message: 'required' },
      ]);
  }
  trigger = { ...trigger, parameters };
  const incoming = (trigger.artifacts as Artifact[] | undefined) ?? [];
  const expectedIds = new Set((trigger.expectedArtifactIds as string[] | undefined) ?? []);
  const bound = new Map<string, Artifact>();
  for (const raw of (pipeline.expectedArtifacts as ExpectedArtifact[] | undefined) ?? []) {
    if (!expectedIds.has(raw.id) && !raw.useDefaultArtifact && !raw.usePriorArtifact) continue;
    const failures: string[] = [];
    const e = resolveExpressions(raw, spel(trigger), failures);
    if (failures.length) throw new InvalidInputError(`expected artifact "${raw.id}": ${failures.join('; ')}`);
    const hits = incoming.filter((a) => artifactMatches(e.matchArtifact ?? {}, a));
    if (hits.length > 1)
      throw new InvalidInputError(
        `Expected artifact ${JSON.stringify(e.matchArtifact)} matches multiple artifacts ${hits.map((a) => a.reference ?? a.name).join(', ')} (id "${e.id}"): Orca refuses to start`,
      );
    // A prior artifact would come from an earlier execution, which a local run does not have.
    const resolved = hits[0] ?? (e.useDefaultArtifact ? e.defaultArtifact : undefined);
    if (!resolved)
      throw new InvalidInputError(
        `Unmatched expected artifact ${JSON.stringify(e.matchArtifact)} could not be resolved (id "${e.id}"): Orca fails the execution at start`,
      );
    bound.set(e.id, resolved);
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
    if (!a)
      throw new Error(
        `required artifact "${id}" is not bound in this execution (no trigger artifact and no default)`,
      );
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
export function bindArtifacts(
  manifests: KubeObject[],
  artifacts: Artifact[],
): { manifests: KubeObject[]; bound: Artifact[] } {
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
    bindPod(
      ((spec?.jobTemplate as Obj | undefined)?.spec as Obj | undefined)?.template
        ? ((((spec!.jobTemplate as Obj).spec as Obj).template as Obj).spec as Obj)
        : undefined,
    );
    if (copy.kind === 'Pod') bindPod(spec);
    return copy;
  });
  return { manifests: out, bound: [...used] };
}
