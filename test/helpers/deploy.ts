/**
 * deploy/ as kubectl builds it: the folders with a kustomization (found by listing, so a new overlay is
 * covered the day it lands), their rendered objects, the checks every build must pass, and the service
 * account tables of the folders' READMEs (what each account may do), for the render test and the real
 * API server suite alike.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import * as yaml from 'js-yaml';
import { defaultImage, IMAGE_COMPONENTS, imageRegistry } from '../../src/contract/images.js';
import { REPO } from './cli.js';

export const DEPLOY = join(REPO, 'deploy');
export const KUBECTL = process.env.KUBECTL ?? 'kubectl';

export interface KubeDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}

/** Every folder under deploy/ with a kustomization.yaml, repository-relative, sorted. */
export function kustomizeFolders(root = DEPLOY): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    if (existsSync(join(dir, 'kustomization.yaml'))) out.push(relative(REPO, dir));
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
  };
  walk(root);
  return out.sort();
}

/** `kubectl kustomize <folder>`: the objects in the order `kubectl apply -k` sends them. */
export function kustomize(folder: string, kubectl = KUBECTL): KubeDoc[] {
  const r = spawnSync(kubectl, ['kustomize', join(REPO, folder)], { encoding: 'utf8', timeout: 60_000 });
  if (r.error)
    throw new Error(`${kubectl} kustomize ${folder}: ${r.error.message} (install kubectl, or set KUBECTL)`);
  if (r.status !== 0) throw new Error(`${kubectl} kustomize ${folder} exited ${r.status}: ${r.stderr}`);
  return (yaml.loadAll(r.stdout) as KubeDoc[]).filter(Boolean);
}

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PersistentVolume',
  'StorageClass',
  'PriorityClass',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
  'APIService',
]);
const id = (d: KubeDoc) =>
  `${d.kind} ${d.metadata.namespace ? `${d.metadata.namespace}/` : ''}${d.metadata.name}`;

type PodSpec = {
  containers?: Array<{ name: string; image?: string }>;
  initContainers?: Array<{ name: string; image?: string }>;
};
/** The pod spec of a workload (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod), if it is one. */
export function podSpec(d: KubeDoc): PodSpec | undefined {
  const spec = d.spec as
    { template?: { spec?: PodSpec }; jobTemplate?: { spec?: { template?: { spec?: PodSpec } } } } | undefined;
  if (d.kind === 'Pod') return d.spec as PodSpec;
  return spec?.template?.spec ?? spec?.jobTemplate?.spec?.template?.spec;
}
export const imagesOf = (d: KubeDoc): string[] => {
  const p = podSpec(d);
  return [...(p?.initContainers ?? []), ...(p?.containers ?? [])].map((c) => c.image ?? '');
};

/**
 * What must hold for every build: each RoleBinding's roleRef names a role of the same build; every image is
 * registry-qualified, and clover-cd's own are the published name and version; a namespaced object names its
 * namespace, which the build creates before it — or which exists before anything is applied (`external`).
 */
export function buildProblems(docs: KubeDoc[], external: readonly string[] = ['default']): string[] {
  const problems: string[] = [];
  const roles = new Set(
    docs
      .filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role')
      .map((d) => `${d.kind}/${d.kind === 'Role' ? `${d.metadata.namespace}/` : ''}${d.metadata.name}`),
  );
  const created = new Map(
    docs.flatMap((d, i) => (d.kind === 'Namespace' ? [[d.metadata.name, i] as const] : [])),
  );
  docs.forEach((d, i) => {
    if (d.kind === 'RoleBinding' || d.kind === 'ClusterRoleBinding') {
      const ref = d.roleRef as { kind: string; name: string };
      const key = `${ref.kind}/${ref.kind === 'Role' ? `${d.metadata.namespace}/` : ''}${ref.name}`;
      if (!roles.has(key))
        problems.push(
          `${id(d)}: roleRef ${ref.kind} ${ref.name} is not defined by this build (its subjects would get 403)`,
        );
    }
    for (const image of imagesOf(d)) {
      if (!imageRegistry(image))
        problems.push(`${id(d)}: image "${image}" names no registry (a runtime pulls docker.io/library/…)`);
      const component = IMAGE_COMPONENTS.find((c) =>
        image
          .split('@')[0]
          .replace(/:[^/:]*$/, '')
          .endsWith(`/${c}`),
      );
      if (component && image !== defaultImage(component))
        problems.push(`${id(d)}: image "${image}" is not the published ${defaultImage(component)}`);
    }
    if (CLUSTER_SCOPED.has(d.kind)) return;
    const ns = d.metadata.namespace;
    if (!ns) problems.push(`${id(d)}: no namespace (it would land in the namespace of whoever applies it)`);
    else if (created.has(ns) && created.get(ns)! > i)
      problems.push(`${id(d)}: namespace ${ns} is created after it`);
    else if (!created.has(ns) && !external.includes(ns))
      problems.push(`${id(d)}: namespace ${ns} is not created by this build`);
  });
  return problems;
}

/** One verb a service account may use on one resource in one namespace. */
export interface Grant {
  account: string; // namespace:name
  namespace: string;
  group: string; // '' = core
  resource: string;
  verb: string;
}
export const grantKey = (g: Grant) =>
  `${g.account} in ${g.namespace}: ${g.verb} ${g.resource}${g.group ? `.${g.group}` : ''}`;

/** What the bindings of a build grant to service accounts, rule by rule (a ClusterRoleBinding: namespace "*"). */
export function grantsOfBuild(docs: KubeDoc[]): Grant[] {
  type Rule = { apiGroups?: string[]; resources?: string[]; verbs?: string[] };
  const rules = new Map(
    docs
      .filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role')
      .map((d) => [
        `${d.kind}/${d.kind === 'Role' ? `${d.metadata.namespace}/` : ''}${d.metadata.name}`,
        (d.rules ?? []) as Rule[],
      ]),
  );
  const out: Grant[] = [];
  for (const b of docs.filter((d) => d.kind === 'RoleBinding' || d.kind === 'ClusterRoleBinding')) {
    const ref = b.roleRef as { kind: string; name: string };
    const namespace = b.kind === 'RoleBinding' ? b.metadata.namespace! : '*';
    const granted =
      rules.get(`${ref.kind}/${ref.kind === 'Role' ? `${b.metadata.namespace}/` : ''}${ref.name}`) ?? [];
    for (const s of (b.subjects ?? []) as Array<{ kind: string; name: string; namespace?: string }>) {
      if (s.kind !== 'ServiceAccount') continue;
      const account = `${s.namespace ?? b.metadata.namespace}:${s.name}`;
      for (const r of granted)
        for (const group of r.apiGroups ?? [])
          for (const resource of r.resources ?? [])
            for (const verb of r.verbs ?? []) out.push({ account, namespace, group, resource, verb });
    }
  }
  return out;
}

/** A row of a README's service account table: which folders create the account and what it may do. */
export interface ReadmeGrantRow {
  readme: string;
  folders: string[];
  account: string;
  namespace: string;
  group: string;
  resource: string;
  verbs: string[];
}

const TABLE_HEADER =
  /^\|\s*folder\s*\|\s*service account\s*\|\s*namespace\s*\|\s*resource \(group\)\s*\|\s*verbs\s*\|$/;
const ticks = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);

/** The `| folder | service account | namespace | resource (group) | verbs |` tables of every README under deploy/. */
export function readmeGrants(root = DEPLOY): ReadmeGrantRow[] {
  const rows: ReadmeGrantRow[] = [];
  const readmes: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name === 'README.md') readmes.push(join(dir, e.name));
    }
  };
  walk(root);
  for (const file of readmes.sort()) {
    let inTable = false;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (TABLE_HEADER.test(line.trim())) inTable = true;
      else if (!line.startsWith('|')) inTable = false;
      else if (inTable && !/^\|\s*-/.test(line)) {
        const [folder, account, namespace, resource, verbs] = line
          .split('|')
          .slice(1, -1)
          .map((c) => c.trim());
        const group = /\(([^)]+)\)/.exec(resource)?.[1] ?? '';
        rows.push({
          readme: relative(REPO, file),
          folders: ticks(folder).map((f) =>
            f.startsWith('deploy/') ? f : relative(REPO, resolve(dirname(file), f)),
          ),
          account: ticks(account)[0],
          namespace: ticks(namespace)[0],
          group: group === 'core' ? '' : group,
          resource: ticks(resource)[0],
          verbs: verbs.split(',').map((v) => v.trim()),
        });
      }
    }
  }
  return rows;
}

/** The README rows of one folder, expanded to grants. */
export const readmeGrantsOf = (rows: ReadmeGrantRow[], folder: string): Grant[] =>
  rows
    .filter((r) => r.folders.includes(folder))
    .flatMap((r) =>
      r.verbs.map((verb) => ({
        account: r.account,
        namespace: r.namespace,
        group: r.group,
        resource: r.resource,
        verb,
      })),
    );
