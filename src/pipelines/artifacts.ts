/**
 * Trigger artifacts and pipeline parameters: the candidate image as an expected
 * artifact bound into the deployManifest (`requiredArtifactIds`, Clouddriver replaces the container image whose
 * value is the artifact's name with its reference), so each docker trigger deploys its own tag and a manual start
 * deploys the `tag` parameter; and the artifact rules `pipeline validate` checks. Pure.
 */
import type { ReleaseSpec, TriggerSpec } from '../spec/types.js';
import { registryHost } from '../spec/image-ref.js';
import type { PipelineProblem } from './types.js';

export const CANDIDATE_ARTIFACT_ID = 'candidate-image';
export const TAG_PARAMETER = 'tag';

/**
 * Trigger types listing the artifact in `expectedArtifactIds`. A docker event always carries the image (Echo names
 * it `<registry>/<repository>`), and a pipeline trigger resolves it from the parent or its default. Webhook and
 * Jenkins triggers do not list it: Echo would ignore every event that does not carry it (ArtifactMatcher), so they
 * bind it when the event brings one with the right name, and the `tag` parameter otherwise (render notes say how).
 */
const LISTING_TRIGGERS = new Set(['docker', 'pipeline']);
/** Docker Hub's address in a Spinnaker Docker registry account (spinnaker.io, "Docker Registry" provider). */
export const DOCKER_HUB_REGISTRY = 'index.docker.io';

export interface ImageBinding {
  /** `<registry>/<repository>`: the name Echo gives the image, which the manifest carries and Clouddriver replaces. */
  name: string;
  registry: string;
  /** Where the registry came from: the docker trigger, the candidate image's host, or assumed (Docker Hub). */
  registryFrom: 'trigger' | 'image' | 'assumed';
  expectedArtifact: Record<string, unknown>;
  parameter: Record<string, unknown>;
  /** Trigger indexes (in spec order) that list the artifact. */
  triggers: number[];
  notes: string[];
}

export const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `repo[:tag]` → repo and tag; undefined for a digest reference (nothing to parameterize). */
export function splitImage(image: string): { repository: string; tag: string } | undefined {
  if (image.includes('@')) return undefined;
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash
    ? { repository: image.slice(0, colon), tag: image.slice(colon + 1) }
    : { repository: image, tag: 'latest' };
}

/** The binding for a spec whose candidate is derived from candidateImage; undefined otherwise. */
export function imageBinding(spec: ReleaseSpec): ImageBinding | undefined {
  const image = spec.service.candidateImage;
  if (!image || spec.service.candidateManifests) return undefined;
  const split = splitImage(image);
  if (!split) return undefined;
  const host = registryHost(split.repository);
  // The repository as a registry reports it (and Echo compares it with the trigger's): without the host.
  const repository = host ? split.repository.slice(host.length + 1) : split.repository;
  const triggers = spec.spinnaker?.triggers ?? [];
  const dockerIndex = triggers.findIndex((t) => t.type === 'docker' && t.repository === repository);
  const docker =
    dockerIndex >= 0 ? (triggers[dockerIndex] as Extract<TriggerSpec, { type: 'docker' }>) : undefined;
  const registry = docker?.registry ?? host ?? DOCKER_HUB_REGISTRY;
  const registryFrom = docker?.registry ? 'trigger' : host ? 'image' : 'assumed';
  const name = `${registry}/${repository}`;
  const notes: string[] = [];
  if (registryFrom === 'assumed') {
    notes.push(
      `${docker ? `spinnaker.triggers[${dockerIndex}].registry` : 'service.candidateImage'} names no registry: assumed ${DOCKER_HUB_REGISTRY} (Docker Hub's address in a Spinnaker registry account), so the image artifact is named ${name}. Echo names a pushed image <registry>/<repository> with the address of the Docker registry account: set ${docker ? `spinnaker.triggers[${dockerIndex}].registry` : 'a registry host in service.candidateImage'} if yours differs, or the trigger never fires.`,
    );
  }
  triggers.forEach((t, i) => {
    if (t.type === 'webhook')
      notes.push(
        `spinnaker.triggers[${i}] (webhook ${t.source}): to deploy a pushed tag, post {"parameters": {"tag": "<tag>"}} or an artifact {"type": "docker/image", "name": "${name}", "reference": "${name}:<tag>"}; otherwise the tag parameter's default is deployed.`,
      );
    if (t.type === 'jenkins')
      notes.push(
        `spinnaker.triggers[${i}] (jenkins ${t.job}): to deploy the build's image, write messageFormat=DOCKER and image=${name}:<tag> into its property file${t.propertyFile ? ` ${t.propertyFile}` : ' (set propertyFile)'} (Igor's DOCKER template names the artifact by the part before ':'); otherwise the tag parameter's default is deployed.`,
      );
  });
  const expectedArtifact = {
    id: CANDIDATE_ARTIFACT_ID,
    displayName: `${spec.service.name} ${spec.service.candidate} image`,
    matchArtifact: { type: 'docker/image', name: escapeRegex(name) },
    useDefaultArtifact: true,
    defaultArtifact: {
      type: 'docker/image',
      name,
      version: "${parameters['tag']}",
      reference: `${name}:\${parameters['tag']}`,
    },
    usePriorArtifact: false,
  };
  const parameter = {
    name: TAG_PARAMETER,
    label: 'Candidate image tag',
    description: `tag of ${name} deployed as ${spec.service.candidate} when the execution carries no image (a manual start); a docker trigger deploys its own tag`,
    default: split.tag,
    required: false,
    hasOptions: false,
    options: [],
    pinned: true,
  };
  const bound = triggers
    .map((t, i) =>
      LISTING_TRIGGERS.has(t.type) && (t.type !== 'docker' || t.repository === repository) ? i : -1,
    )
    .filter((i) => i >= 0);
  return { name, registry, registryFrom, expectedArtifact, parameter, triggers: bound, notes };
}

type Obj = Record<string, unknown>;
type Add = (x: Omit<PipelineProblem, 'pipeline'>) => void;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);
const ARTIFACT_FIELDS = ['type', 'name', 'version', 'location', 'reference', 'artifactAccount'];
const MATCH_FIELDS = ['type', 'name', 'version', 'location', 'reference'];

function regexProblem(v: string): string | undefined {
  if (v.includes('${')) return undefined;
  try {
    new RegExp(`^(?:${v})$`);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Expected-artifact shapes: matchArtifact an object with a type and string fields that are valid
 * regular expressions, a default artifact when useDefaultArtifact is set, and a trigger's expectedArtifactIds
 * resolvable when the trigger may not carry the artifact. (Declared ids and references: validate.ts.)
 */
export function checkExpectedArtifacts(p: Obj, base: string, add: Add): void {
  const at = (k: string) => (base ? `${base}.${k}` : k);
  const list = Array.isArray(p.expectedArtifacts) ? p.expectedArtifacts : [];
  const resolvable = new Set<string>();
  list.forEach((a, i) => {
    const path = at(`expectedArtifacts[${i}]`);
    if (!isObj(a))
      return add({
        severity: 'error',
        path,
        rule: 'artifact-shape',
        message: 'each expected artifact must be an object {id, matchArtifact, ...}',
      });
    if (typeof a.id !== 'string' || !a.id)
      add({
        severity: 'error',
        path: `${path}.id`,
        rule: 'artifact-shape',
        message: 'required: the id stages and triggers refer to',
      });
    const m = a.matchArtifact;
    if (!isObj(m))
      add({
        severity: 'error',
        path: `${path}.matchArtifact`,
        rule: 'artifact-match',
        message: `expected an object such as {"type": "docker/image", "name": "..."}, found ${JSON.stringify(m) ?? 'nothing'}: Orca cannot match any artifact`,
      });
    else {
      if (typeof m.type !== 'string' || !m.type)
        add({
          severity: 'error',
          path: `${path}.matchArtifact.type`,
          rule: 'artifact-match',
          message: 'required: the artifact type (docker/image, github/file, ...)',
        });
      for (const f of MATCH_FIELDS) {
        const v = m[f];
        if (v === undefined || v === null || v === '') continue;
        if (typeof v !== 'string')
          add({
            severity: 'error',
            path: `${path}.matchArtifact.${f}`,
            rule: 'artifact-match',
            message: `expected a string (a regular expression), found ${JSON.stringify(v)}`,
          });
        else {
          const problem = regexProblem(v);
          if (problem)
            add({
              severity: 'error',
              path: `${path}.matchArtifact.${f}`,
              rule: 'artifact-match',
              message: `not a valid regular expression (fields are matched as full-match regexes): ${problem}`,
            });
        }
      }
    }
    if (a.useDefaultArtifact === true) {
      const d = a.defaultArtifact;
      if (!isObj(d) || typeof d.type !== 'string')
        add({
          severity: 'error',
          path: `${path}.defaultArtifact`,
          rule: 'artifact-default',
          message:
            'useDefaultArtifact is true but defaultArtifact has no type: Orca binds nothing and the execution fails with "Unmatched expected artifact"',
        });
      else if (!d.reference)
        add({
          severity: 'warning',
          path: `${path}.defaultArtifact.reference`,
          rule: 'artifact-default',
          message:
            'a default artifact without reference binds no image or file (Clouddriver replaces with the reference)',
        });
      else if (isObj(d))
        for (const f of ARTIFACT_FIELDS)
          if (d[f] !== undefined && typeof d[f] !== 'string')
            add({
              severity: 'error',
              path: `${path}.defaultArtifact.${f}`,
              rule: 'artifact-default',
              message: `expected a string, found ${JSON.stringify(d[f])}`,
            });
    }
    for (const f of ['useDefaultArtifact', 'usePriorArtifact']) {
      if (a[f] !== undefined && typeof a[f] !== 'boolean')
        add({
          severity: 'error',
          path: `${path}.${f}`,
          rule: 'boolean-field',
          message: `expected a JSON boolean, found ${JSON.stringify(a[f])}`,
        });
    }
    if (typeof a.id === 'string' && (a.useDefaultArtifact === true || a.usePriorArtifact === true))
      resolvable.add(a.id);
  });
  // A trigger that may fire without the artifact (a manual start, a cron) needs a default or prior artifact.
  if (Array.isArray(p.triggers))
    p.triggers.forEach((t, i) => {
      if (!isObj(t) || !Array.isArray(t.expectedArtifactIds)) return;
      t.expectedArtifactIds.forEach((id, j) => {
        if (typeof id !== 'string')
          add({
            severity: 'error',
            path: at(`triggers[${i}].expectedArtifactIds[${j}]`),
            rule: 'artifact-declared',
            message: `expected an expected-artifact id string, found ${JSON.stringify(id)}`,
          });
        else if (!resolvable.has(id) && list.some((a) => isObj(a) && a.id === id) && t.type !== 'docker') {
          add({
            severity: 'warning',
            path: at(`triggers[${i}].expectedArtifactIds[${j}]`),
            rule: 'artifact-default',
            message: `"${id}" has no default or prior artifact: a ${String(t.type)} event without that artifact fails at start ("Unmatched expected artifact")`,
          });
        }
      });
    });
}
