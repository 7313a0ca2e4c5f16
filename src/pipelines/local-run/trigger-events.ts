/**
 * What Echo does with an event before Orca sees it (test/conformance/echo-trigger-artifacts.json): find the
 * pipeline's trigger the event matches, name the event's artifacts as Echo (or Igor, or Orca for a pipeline trigger)
 * names them, and drop the event when the trigger lists expectedArtifactIds that none of its artifacts match
 * (ArtifactMatcher, with kork's matching). A local run fires its pipeline through here: an event Echo would ignore
 * starts nothing (exit 2, saying why).
 */
import { InvalidInputError } from '../../util/errors.js';
import { artifactMatches, type Artifact } from '../artifact-match.js';
import { DOCKER_HUB_REGISTRY } from '../artifacts.js';
import { dockerEventArtifact } from '../triggers.js';
import { readJsonPath } from './jsonpath.js';

type Obj = Record<string, unknown>;

/**
 * The event a local run starts with. `manual` (default) as Deck starts it; the others as their source would:
 * docker {tag, registry?, repository?}, webhook {source?, payload?}, git {branch?, payload?}, jenkins {properties?,
 * artifacts?}, pipeline {parentArtifacts?}, cron {}. Unset fields are taken from the pipeline's trigger.
 */
export type TriggerEvent = Obj & { type: string; parameters?: Record<string, unknown> };

export interface FiredTrigger {
  /** The trigger as Orca receives it: the config's fields, the event's, parameters, artifacts, expectedArtifactIds. */
  trigger: Obj;
  artifacts: Artifact[];
}

const ignored = (why: string, path: string, expected: string) =>
  new InvalidInputError(`Echo would not start the pipeline: ${why}`, [{ path, message: expected }]);

/** Java's String.matches on a trimmed pattern (Echo's docker tag and git branch patterns): a full match. */
function fullMatch(pattern: string, value: string): boolean {
  try {
    return new RegExp(`^(?:${pattern.trim()})$`).test(value);
  } catch {
    return false;
  }
}

/** Pattern.asPredicate: the regex found anywhere in the value (webhook and build payload constraints). */
function found(pattern: string, value: string): boolean {
  try {
    return new RegExp(pattern).test(value);
  } catch {
    return false;
  }
}

function webhookArtifacts(source: string, payload: Obj): Artifact[] {
  if (Array.isArray(payload.artifacts) && payload.artifacts.length) return payload.artifacts as Artifact[];
  if (source === 'dockerhub') {
    const repo = (payload.repository as Obj | undefined)?.repo_name;
    const tag = (payload.push_data as Obj | undefined)?.tag;
    if (typeof repo !== 'string' || typeof tag !== 'string') return [];
    const name = `index.docker.io/${repo}`;
    return [{ type: 'docker/image', name, version: tag, reference: `${name}:${tag}` }];
  }
  if (source === 'dockerregistry') {
    return ((payload.events as Obj[] | undefined) ?? []).flatMap((e) => {
      const target = e.target as Obj | undefined;
      if (e.action !== 'push' || typeof target?.repository !== 'string') return [];
      const host =
        typeof (e.request as Obj | undefined)?.host === 'string' ? `${(e.request as Obj).host}/` : '';
      const [version, sep] =
        typeof target.tag === 'string'
          ? [target.tag, ':']
          : typeof target.digest === 'string'
            ? [target.digest, '@']
            : [];
      if (!version) return [];
      return [
        {
          type: 'docker/image',
          name: host + target.repository,
          version,
          reference: `${host}${target.repository}${sep}${version}`,
        },
      ];
    });
  }
  return [];
}

function githubPushArtifacts(payload: Obj): Artifact[] {
  const files = new Set(
    ((payload.commits as Obj[] | undefined) ?? []).flatMap((c) => [
      ...((c.added as string[]) ?? []),
      ...((c.modified as string[]) ?? []),
    ]),
  );
  const contents = String((payload.repository as Obj | undefined)?.contents_url ?? '');
  return [...files].map((f) => ({
    type: 'github/file',
    name: f,
    version: String(payload.after ?? ''),
    reference: contents.replace('{+path}', f),
  }));
}

/** Igor's standard DOCKER template for a build's property file: the image before and after its first ':'. */
function buildPropertyArtifacts(properties: Obj): Artifact[] {
  if (properties.messageFormat !== 'DOCKER' || typeof properties.image !== 'string') return [];
  const [name, version] = properties.image.split(':');
  return [{ type: 'docker/image', name, version, reference: properties.image }];
}

const constraintsMet = (constraints: unknown, payload: Obj) =>
  Object.entries((constraints as Obj | undefined) ?? {}).every(([k, pattern]) => {
    const v = k in payload ? payload[k] : k.startsWith('$') ? readJsonPath(payload, k).value : undefined;
    return v !== undefined && v !== null && (pattern === null || found(String(pattern), String(v)));
  });

/** The pipeline's trigger of `type` an event fires, with the event's artifacts as Echo names them. */
export function fireTrigger(pipeline: Obj, event: TriggerEvent | undefined): FiredTrigger {
  const given: TriggerEvent = event ?? { type: 'manual' };
  if (given.type === 'manual') {
    const artifacts = (given.artifacts as Artifact[] | undefined) ?? [];
    return { trigger: { user: 'clover-cd', ...given, artifacts }, artifacts };
  }
  const configs = ((pipeline.triggers as Obj[] | undefined) ?? [])
    .map((t, i) => ({ t, i }))
    .filter(({ t }) => t.type === given.type && t.enabled === true);
  if (!configs.length)
    throw ignored(
      `it has no enabled ${given.type} trigger`,
      'triggers',
      `an enabled trigger of type ${given.type}`,
    );
  const errors: string[] = [];
  for (const { t, i } of configs) {
    const path = `triggers[${i}]`;
    const attempt = artifactsOf(t, given, path);
    if ('why' in attempt) {
      errors.push(attempt.why);
      continue;
    }
    const { artifacts, fields } = attempt;
    const ids = ((t.expectedArtifactIds as string[] | undefined) ?? []).filter(
      (id) => typeof id === 'string',
    );
    const expected = ((pipeline.expectedArtifacts as Obj[] | undefined) ?? []).filter((e) =>
      ids.includes(String(e.id)),
    );
    let expectedArtifactIds = ids;
    if (given.type === 'pipeline') {
      // Orca (DependentPipelineStarter): the trigger's ids plus every expected artifact an incoming artifact matches.
      const matching = ((pipeline.expectedArtifacts as Obj[] | undefined) ?? [])
        .filter((e) =>
          artifacts.some((a) => artifactMatches((e.matchArtifact as Partial<Artifact>) ?? {}, a)),
        )
        .map((e) => String(e.id));
      expectedArtifactIds = [...new Set([...ids, ...matching])];
    } else if (
      ids.length &&
      !artifacts.some((a) =>
        expected.some((e) => artifactMatches((e.matchArtifact as Partial<Artifact>) ?? {}, a)),
      )
    ) {
      // Echo's ArtifactMatcher: a trigger listing expected artifacts ignores an event none of whose artifacts match.
      const names = artifacts.map((a) => `${a.type} ${a.name ?? ''}`).join(', ') || 'no artifact';
      errors.push(
        `${path} lists expected artifact(s) ${ids.join(', ')}, whose matchArtifact ${expected.map((e) => JSON.stringify(e.matchArtifact)).join(', ')} match none of the event's artifacts (${names}; kork matches each field as a full regex)`,
      );
      continue;
    }
    const parameters = { ...((fields.parameters as Obj | undefined) ?? {}), ...(given.parameters ?? {}) };
    return { trigger: { ...t, ...given, ...fields, parameters, artifacts, expectedArtifactIds }, artifacts };
  }
  throw ignored(errors.join('; '), 'trigger', `an event the pipeline's ${given.type} trigger accepts`);
}

/** The event's artifacts and trigger fields for one trigger config, or why Echo would not match it. */
function artifactsOf(
  t: Obj,
  given: TriggerEvent,
  path: string,
): { artifacts: Artifact[]; fields: Obj } | { why: string } {
  const str = (k: string) =>
    typeof given[k] === 'string'
      ? (given[k] as string)
      : typeof t[k] === 'string'
        ? (t[k] as string)
        : undefined;
  switch (given.type) {
    case 'docker': {
      const tag = String(given.tag ?? '');
      const repository = str('repository');
      if (!t.account || !repository) return { why: `${path} has no account or repository (Echo skips it)` };
      if (repository !== t.repository)
        return { why: `${path} is for repository ${String(t.repository)}, not ${repository}` };
      const pattern = typeof t.tag === 'string' && t.tag.trim() ? t.tag : undefined;
      if (pattern ? !fullMatch(pattern, tag) : tag === 'latest' || !tag)
        return {
          why: `tag "${tag}" ${pattern ? `does not fully match ${path}.tag ${JSON.stringify(pattern)}` : `is refused by ${path}, which has no tag pattern (Echo then fires for any tag but "latest")`}`,
        };
      // The registry of the event is the Docker registry account's address; Deck copies it into the trigger.
      const registry = str('registry') ?? DOCKER_HUB_REGISTRY;
      return {
        artifacts: [dockerEventArtifact(registry, repository, tag)],
        fields: { registry, repository, tag },
      };
    }
    case 'webhook': {
      const source = str('source') ?? '';
      const payload = (given.payload as Obj | undefined) ?? {};
      if (source !== t.source) return { why: `${path} is for source ${String(t.source)}, not ${source}` };
      if (t.payloadConstraints && !constraintsMet(t.payloadConstraints, payload))
        return { why: `the payload does not meet ${path}.payloadConstraints` };
      return {
        artifacts: webhookArtifacts(source, payload),
        fields: { payload, parameters: payload.parameters },
      };
    }
    case 'git': {
      const branch = typeof given.branch === 'string' ? given.branch : 'main';
      const branchPattern = typeof t.branch === 'string' && t.branch ? t.branch : undefined;
      if (branchPattern && !fullMatch(branchPattern, branch))
        return {
          why: `branch "${branch}" does not fully match ${path}.branch ${JSON.stringify(branchPattern)}`,
        };
      const payload = (given.payload as Obj | undefined) ?? {};
      return {
        artifacts: t.source === 'github' ? githubPushArtifacts(payload) : [],
        fields: { branch, hash: payload.after },
      };
    }
    case 'jenkins': {
      const properties = (given.properties as Obj | undefined) ?? {};
      if (t.payloadConstraints && !constraintsMet(t.payloadConstraints, properties))
        return { why: `the build's properties do not meet ${path}.payloadConstraints` };
      const artifacts = [
        ...((given.artifacts as Artifact[] | undefined) ?? []),
        ...buildPropertyArtifacts(properties),
      ];
      return { artifacts, fields: { properties, buildNumber: given.buildNumber ?? 1 } };
    }
    case 'pipeline':
      return { artifacts: (given.parentArtifacts as Artifact[] | undefined) ?? [], fields: {} };
    default:
      return { artifacts: (given.artifacts as Artifact[] | undefined) ?? [], fields: {} };
  }
}
