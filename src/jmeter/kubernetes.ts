import * as yaml from 'js-yaml';
import { defaultImage } from '../contract/images.js';
import { readYamlFile } from '../spec/load.js';
import { planFromDocument, withDuration, withTarget } from './plan.js';

/**
 * Distributed JMeter on a cluster, in clover-cd's JMeter image: a headless Service + StatefulSet of engines
 * (`clover-cd load server`: jmeter-server with stable DNS names for RMI) and a Job whose controller is
 * `clover-cd load run --remote` — JMeter started exactly as a local run starts it, with the same results
 * columns, expected counts, criteria and exit codes. The plan document goes in a ConfigMap; each engine runs
 * the whole plan, so load = engines x plan. Every container is exec form (the images have no shell). Keep
 * engines out of the mesh (sidecar.istio.io/inject: "false"): JMeter's RMI does not pass through Envoy.
 */
export interface KubernetesOptions {
  name?: string;
  namespace?: string;
  engines?: number;
  /** Default: clover-cd's JMeter image (contract/images.ts). */
  image?: string;
  /** Passed to the controller's `load run` as --target / --duration. */
  target?: string;
  durationS?: number;
  /** Mounted claim for the results; an emptyDir when absent (read them with kubectl cp before the pod goes). */
  resultsClaim?: string;
  /** The release and step a release's window renders them for: labels, and what a later run's cleanup finds. */
  release?: string;
  step?: number;
  /** Each engine's requests and limits (default cpu 1, memory 1Gi, limit memory 2Gi). */
  resources?: { cpu?: string; memory?: string };
  /** The controller's `--run-id` (the x-clover-cd-load value) and `--stream-results` (its JTL rows on its log). */
  runId?: string;
  streamResults?: boolean;
}

/** Labels of a release's load objects: `clover-cd.io/release` and `clover-cd.io/step` (1-based, as printed). */
export const LOAD_RELEASE_LABEL = 'clover-cd.io/release';
export const LOAD_STEP_LABEL = 'clover-cd.io/step';

/**
 * The objects' name for a release's step (0-based `step`, printed 1-based): a StatefulSet's name is at most
 * 52 characters (its pods' revision label) and `-engine` is added to it, so the release part is shortened.
 */
export function loadObjectsName(release: string, step: number): string {
  const suffix = `-load-${step + 1}`;
  const head = release
    .replace(/\./g, '-')
    .slice(0, 45 - suffix.length)
    .replace(/-+$/, '');
  return `${head}${suffix}`;
}

export const ENGINE_RMI_PORT = 1099;
/** The engine's own RMI object port, fixed so that a Service can name it (jmeter-server picks one at random). */
export const ENGINE_LOCAL_PORT = 50000;

/** `plan`: a plan file or its parsed document (Clover's jmeter_testplan.yaml form); exit 2 when invalid. */
export function renderKubernetes(plan: string | object, o: KubernetesOptions = {}): string {
  return kubernetesObjects(plan, o)
    .map((d) => yaml.dump(d, { noRefs: true, lineWidth: -1 }))
    .join('---\n');
}

/** The objects `renderKubernetes` writes, in order; the first (the plan's ConfigMap) owns the others in a release. */
export function kubernetesObjects(plan: string | object, o: KubernetesOptions = {}): KubeDocument[] {
  const file = typeof plan === 'string' ? plan : undefined;
  const document = file ? readYamlFile(file, 'a load plan (YAML or JSON)') : plan;
  // The controller reads the document again; validating it here refuses a bad plan before anything is applied.
  const parsed = planFromDocument(document, file);
  withDuration(o.target ? withTarget(parsed, o.target) : parsed, o.durationS);
  const name =
    o.name ?? (o.release !== undefined ? loadObjectsName(o.release, o.step ?? 0) : 'clover-cd-load');
  const namespace = o.namespace ?? 'default';
  const engines = o.engines ?? 2;
  const image = o.image ?? defaultImage('clover-cd-jmeter');
  const labels: Record<string, string> = {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/managed-by': 'clover-cd',
    ...(o.release ? { [LOAD_RELEASE_LABEL]: o.release } : {}),
    ...(o.step !== undefined ? { [LOAD_STEP_LABEL]: String(o.step + 1) } : {}),
  };
  const noMesh = { 'sidecar.istio.io/inject': 'false' };
  const engineDomain = `${name}-engine.${namespace}.svc`;
  const engineHosts = Array.from(
    { length: engines },
    (_, i) => `${name}-engine-${i}.${engineDomain}:${ENGINE_RMI_PORT}`,
  );
  const controllerArgs = [
    'load',
    'run',
    '/plan/plan.yaml',
    '--engine',
    'jmeter',
    '--remote',
    engineHosts.join(','),
    '--results',
    '/results/results.jtl',
  ];
  if (o.target) controllerArgs.push('--target', o.target);
  if (o.durationS !== undefined) controllerArgs.push('--duration', String(o.durationS));
  if (o.runId) controllerArgs.push('--run-id', o.runId);
  // A release reads the controller's results from its log while the run goes.
  if (o.streamResults ?? o.release !== undefined) controllerArgs.push('--stream-results');
  const docs: KubeDocument[] = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `${name}-plan`, namespace, labels },
      data: { 'plan.yaml': yaml.dump(document, { noRefs: true, lineWidth: -1 }) },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `${name}-engine`, namespace, labels },
      spec: {
        clusterIP: 'None',
        selector: { ...labels, 'app.kubernetes.io/component': 'engine' },
        // The protocol is the ports' list key: a server-side apply (1.20) refuses an element without it.
        ports: [
          { name: 'rmi', port: ENGINE_RMI_PORT, protocol: 'TCP' },
          { name: 'rmi-local', port: ENGINE_LOCAL_PORT, protocol: 'TCP' },
        ],
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: `${name}-engine`, namespace, labels },
      spec: {
        serviceName: `${name}-engine`,
        replicas: engines,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: { ...labels, 'app.kubernetes.io/component': 'engine' } },
        template: {
          metadata: { labels: { ...labels, 'app.kubernetes.io/component': 'engine' }, annotations: noMesh },
          spec: {
            containers: [
              {
                name: 'jmeter-server',
                image,
                // The kubelet replaces $(POD_NAME): the engine's DNS name, carried in its RMI stubs for the controller.
                command: ['clover-cd'],
                args: [
                  'load',
                  'server',
                  '--port',
                  String(ENGINE_RMI_PORT),
                  '--local-port',
                  String(ENGINE_LOCAL_PORT),
                  '--hostname',
                  `$(POD_NAME).${engineDomain}`,
                ],
                env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
                ports: [
                  { containerPort: ENGINE_RMI_PORT, protocol: 'TCP' },
                  { containerPort: ENGINE_LOCAL_PORT, protocol: 'TCP' },
                ],
                readinessProbe: { tcpSocket: { port: ENGINE_RMI_PORT }, periodSeconds: 2 },
                resources: {
                  requests: { cpu: o.resources?.cpu ?? '1', memory: o.resources?.memory ?? '1Gi' },
                  limits: { memory: o.resources?.memory ?? '2Gi' },
                },
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: `${name}-controller`, namespace, labels },
      spec: {
        backoffLimit: 0,
        template: {
          metadata: {
            labels: { ...labels, 'app.kubernetes.io/component': 'controller' },
            annotations: noMesh,
          },
          spec: {
            restartPolicy: 'Never',
            // The image runs as uid 10001: a results claim must be writable by it.
            securityContext: { fsGroup: 10001 },
            containers: [
              {
                name: 'jmeter',
                image,
                command: ['clover-cd'],
                args: controllerArgs,
                volumeMounts: [
                  { name: 'plan', mountPath: '/plan' },
                  { name: 'results', mountPath: '/results' },
                ],
              },
            ],
            volumes: [
              { name: 'plan', configMap: { name: `${name}-plan` } },
              o.resultsClaim
                ? { name: 'results', persistentVolumeClaim: { claimName: o.resultsClaim } }
                : { name: 'results', emptyDir: {} },
            ],
          },
        },
      },
    },
  ];
  return docs;
}

/** A Kubernetes-shaped object as rendered (the Platform's KubeObject, which this module may not import). */
export interface KubeDocument {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}
