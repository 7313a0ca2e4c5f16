/** Trigger rules: type, enabled:true, required keys, valid patterns, Echo's artifact names. */
import { registryHost } from '../spec/image-ref.js';
import { artifactMatches, type Artifact } from './artifact-match.js';
import { DOCKER_HUB_REGISTRY } from './artifacts.js';
import type { PipelineProblem } from './types.js';

type Report = (severity: PipelineProblem['severity'], path: string, rule: string, message: string) => void;
type Obj = Record<string, unknown>;

export const TRIGGER_REQUIRED: Record<string, string[]> = {
  jenkins: ['master', 'job'],
  travis: ['master', 'job'],
  wercker: ['master', 'job'],
  concourse: ['master'],
  'gitlab-ci': ['master', 'job'],
  docker: ['account', 'repository'],
  git: ['source', 'project', 'slug'],
  webhook: ['source'],
  pipeline: ['application', 'pipeline'],
  cron: ['cronExpression'],
  pubsub: ['pubsubSystem', 'subscriptionName'],
};
const OTHER_TRIGGERS = new Set([
  'manual',
  'helm',
  'nexus',
  'artifactory',
  'plugin',
  'cdevents',
  'dryrun',
  'quay',
  'ecr',
]);

function patternProblem(value: string): string | undefined {
  if (value.includes('${')) return undefined;
  try {
    new RegExp(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export function checkTrigger(t: unknown, path: string, report: Report): void {
  if (!t || typeof t !== 'object' || Array.isArray(t)) {
    report('error', path, 'trigger-object', 'each trigger must be an object with type and enabled');
    return;
  }
  const trig = t as Obj;
  const type = trig.type;
  if (typeof type !== 'string' || !type) {
    report(
      'error',
      `${path}.type`,
      'trigger-type',
      'required: the trigger type (jenkins, docker, git, webhook, pipeline, cron, ...)',
    );
    return;
  }
  if (trig.enabled === undefined) {
    report(
      'error',
      `${path}.enabled`,
      'trigger-enabled',
      'missing: Echo treats a trigger without "enabled": true as disabled and never fires it',
    );
  } else if (typeof trig.enabled !== 'boolean') {
    report(
      'error',
      `${path}.enabled`,
      'trigger-enabled',
      `expected a JSON boolean, found ${JSON.stringify(trig.enabled)}`,
    );
  } else if (!trig.enabled) {
    report('warning', `${path}.enabled`, 'trigger-enabled', 'the trigger is disabled: Echo never fires it');
  }
  const required = TRIGGER_REQUIRED[type];
  if (!required && !OTHER_TRIGGERS.has(type))
    report(
      'warning',
      `${path}.type`,
      'trigger-type',
      `"${type}" is not a trigger type this validator knows; Echo ignores types it has no handler for`,
    );
  for (const key of required ?? []) {
    const v = trig[key];
    // Front50 saves it and manual runs still work, but Echo can never match an event to it.
    if (typeof v !== 'string' || v.trim() === '')
      report(
        'warning',
        `${path}.${key}`,
        'trigger-required',
        `a ${type} trigger needs "${key}": without it Echo never matches an event and the trigger never fires`,
      );
  }
  if (
    type === 'pipeline' &&
    trig.status !== undefined &&
    (!Array.isArray(trig.status) || trig.status.length === 0)
  ) {
    report(
      'error',
      `${path}.status`,
      'trigger-required',
      'expected a non-empty array of successful|failed|canceled|suspended',
    );
  } else if (type === 'pipeline' && trig.status === undefined) {
    report(
      'warning',
      `${path}.status`,
      'trigger-required',
      'no status list: the trigger never matches an upstream execution',
    );
  }
  if (type === 'cron' && typeof trig.cronExpression === 'string') {
    const fields = trig.cronExpression.trim().split(/\s+/).length;
    if (fields < 6 || fields > 7)
      report(
        'error',
        `${path}.cronExpression`,
        'trigger-cron',
        `"${trig.cronExpression}" has ${fields} fields: Quartz expects 6 or 7 (seconds first), e.g. "0 0/30 * ? * MON-FRI"`,
      );
  }
  for (const key of ['tag', 'branch']) {
    if (typeof trig[key] === 'string') {
      const p = patternProblem(trig[key] as string);
      if (p) report('error', `${path}.${key}`, 'trigger-regex', `not a valid regular expression: ${p}`);
    }
  }
  if (trig.payloadConstraints && typeof trig.payloadConstraints === 'object') {
    for (const [k, v] of Object.entries(trig.payloadConstraints as Obj)) {
      const p = typeof v === 'string' ? patternProblem(v) : 'expected a string pattern';
      if (p)
        report(
          'error',
          `${path}.payloadConstraints.${k}`,
          'trigger-regex',
          `not a valid regular expression: ${p}`,
        );
    }
  }
}

/** The docker/image artifact Echo attaches to an event of a docker trigger (DockerEventHandler.getArtifactsFromEvent). */
export function dockerEventArtifact(registry: string, repository: string, tag: string): Artifact {
  const name = `${registry}/${repository}`;
  return { type: 'docker/image', name, version: tag, reference: `${name}:${tag}` };
}

/**
 * Docker triggers against the way Echo names their artifacts: `<registry>/<repository>`, the registry being the
 * Docker registry account's address (Deck writes it into `registry`). A trigger listing an expected artifact fires
 * only when that artifact's matchArtifact full-matches the event's artifact (ArtifactMatcher, kork).
 */
export function checkDockerTriggerArtifacts(p: Obj, base: string, report: Report): void {
  const at = (k: string) => (base ? `${base}.${k}` : k);
  const expected = Array.isArray(p.expectedArtifacts) ? (p.expectedArtifacts as unknown[]) : [];
  (Array.isArray(p.triggers) ? (p.triggers as unknown[]) : []).forEach((raw, i) => {
    const t = raw as Obj;
    if (!t || typeof t !== 'object' || t.type !== 'docker' || typeof t.repository !== 'string') return;
    const path = at(`triggers[${i}]`);
    const registry = typeof t.registry === 'string' && t.registry ? t.registry : undefined;
    const host = registryHost(t.repository);
    if (host)
      report(
        'warning',
        `${path}.repository`,
        'trigger-docker-repository',
        `"${t.repository}" starts with a registry host: Echo compares repository with the image's repository inside its registry (without "${host}/"), so no push matches`,
      );
    const name = `${registry ?? DOCKER_HUB_REGISTRY}/${t.repository}`;
    const event = dockerEventArtifact(registry ?? DOCKER_HUB_REGISTRY, t.repository, 'x');
    const failing: string[] = [];
    for (const id of Array.isArray(t.expectedArtifactIds) ? t.expectedArtifactIds : []) {
      const j = expected.findIndex((e) => !!e && typeof e === 'object' && (e as Obj).id === id);
      const match = j >= 0 ? ((expected[j] as Obj).matchArtifact as Obj | undefined) : undefined;
      if (!match || typeof match !== 'object') continue; // reported by the artifact rules
      if (artifactMatches(match as Partial<Artifact>, event)) continue;
      if (registry) {
        report(
          'error',
          at(`expectedArtifacts[${j}].matchArtifact`),
          'trigger-artifact-name',
          `${JSON.stringify(match)} does not match the artifact Echo attaches to a push of ${path} (type docker/image, name "${name}", a full-regex match): the trigger lists "${String(id)}" in expectedArtifactIds, so Echo ignores every push`,
        );
      } else failing.push(String(id));
      // A name without any registry can never match "<registry>/<repository>", whatever the account's address.
      if (!registry && artifactMatches(match as Partial<Artifact>, { ...event, name: t.repository })) {
        report(
          'error',
          at(`expectedArtifacts[${j}].matchArtifact.name`),
          'trigger-artifact-name',
          `matches the repository "${t.repository}" without a registry, but Echo names a pushed image "<registry>/${t.repository}" (e.g. "${name}"): ${path} lists "${String(id)}", so Echo ignores every push`,
        );
      }
    }
    if (!registry) {
      report(
        'warning',
        `${path}.registry`,
        'trigger-docker-registry',
        `no registry: Echo names a pushed image "<registry>/<repository>" with the address of the Docker registry account (Deck writes it here); assuming ${DOCKER_HUB_REGISTRY} (Docker Hub) the name is "${name}"${failing.length ? `, which expected artifact(s) ${failing.join(', ')} do not match: the trigger would never fire` : ''}`,
      );
    }
  });
}
