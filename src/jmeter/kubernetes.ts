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
}

export const ENGINE_RMI_PORT = 1099;
/** The engine's own RMI object port, fixed so that a Service can name it (jmeter-server picks one at random). */
export const ENGINE_LOCAL_PORT = 50000;

/** `plan`: a plan file or its parsed document (Clover's jmeter_testplan.yaml form); exit 2 when invalid. */
export function renderKubernetes(plan: string | object, o: KubernetesOptions = {}): string {
  const file = typeof plan === 'string' ? plan : undefined;
  const document = file ? readYamlFile(file, 'a load plan (YAML or JSON)') : plan;
  // The controller reads the document again; validating it here refuses a bad plan before anything is applied.
  const parsed = planFromDocument(document, file);
  withDuration(o.target ? withTarget(parsed, o.target) : parsed, o.durationS);
  const name = o.name ?? 'clover-cd-load';
  const namespace = o.namespace ?? 'default';
  const engines = o.engines ?? 2;
  const image = o.image ?? defaultImage('clover-cd-jmeter');
  const labels = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/managed-by': 'clover-cd' };
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
  const docs: object[] = [
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
        ports: [
          { name: 'rmi', port: ENGINE_RMI_PORT },
          { name: 'rmi-local', port: ENGINE_LOCAL_PORT },
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
                ports: [{ containerPort: ENGINE_RMI_PORT }, { containerPort: ENGINE_LOCAL_PORT }],
                readinessProbe: { tcpSocket: { port: ENGINE_RMI_PORT }, periodSeconds: 2 },
                resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { memory: '2Gi' } },
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
  return docs.map((d) => yaml.dump(d, { noRefs: true, lineWidth: -1 })).join('---\n');
}
