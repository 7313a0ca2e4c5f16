import * as yaml from 'js-yaml';
import { renderJmx } from './render.js';
import { SAVE_PROPERTIES } from './jmeter-runner.js';
import type { LoadPlan } from './types.js';

/**
 * Distributed JMeter on a cluster, with JMeter itself: a headless Service + StatefulSet of `jmeter-server`
 * engines (stable DNS names for RMI) and a Job running the controller against them. The plan goes in a
 * ConfigMap. Each engine runs the whole plan, so load = engines x plan. Keep engines out of the mesh
 * (sidecar.istio.io/inject: "false"): JMeter's RMI does not pass through Envoy.
 */
export interface KubernetesOptions {
  name?: string;
  namespace?: string;
  engines?: number;
  image?: string;
  /** Mounted claim for the results; an emptyDir when absent (read them with kubectl cp before the pod goes). */
  resultsClaim?: string;
}

export function renderKubernetes(plan: LoadPlan, o: KubernetesOptions = {}): string {
  const name = o.name ?? 'clover-cd-load';
  const namespace = o.namespace ?? 'default';
  const engines = o.engines ?? 2;
  const image = o.image ?? 'justb4/jmeter:5.5';
  const labels = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/managed-by': 'clover-cd' };
  const noMesh = { 'sidecar.istio.io/inject': 'false' };
  const rmiPort = 1099;
  const localPort = 50000;
  const engineHosts = Array.from({ length: engines }, (_, i) => `${name}-engine-${i}.${name}-engine.${namespace}.svc:${rmiPort}`);
  const props = Object.entries(SAVE_PROPERTIES).map(([k, v]) => `-J${k}=${v}`);
  const docs: object[] = [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${name}-plan`, namespace, labels }, data: { 'plan.jmx': renderJmx(plan, name) } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `${name}-engine`, namespace, labels },
      spec: {
        clusterIP: 'None',
        selector: { ...labels, 'app.kubernetes.io/component': 'engine' },
        ports: [
          { name: 'rmi', port: rmiPort },
          { name: 'rmi-local', port: localPort },
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
                command: ['sh', '-c'],
                args: [
                  `exec jmeter -s -Dserver_port=${rmiPort} -Jserver.rmi.localport=${localPort} -Jserver.rmi.ssl.disable=true -Djava.rmi.server.hostname=$(hostname).${name}-engine.${namespace}.svc`,
                ],
                ports: [{ containerPort: rmiPort }, { containerPort: localPort }],
                readinessProbe: { tcpSocket: { port: rmiPort }, periodSeconds: 2 },
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
          metadata: { labels: { ...labels, 'app.kubernetes.io/component': 'controller' }, annotations: noMesh },
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'jmeter',
                image,
                command: ['jmeter'],
                args: ['-n', '-t', '/plan/plan.jmx', '-l', '/results/results.jtl', '-j', '/results/jmeter.log', '-R', engineHosts.join(','), '-Jserver.rmi.ssl.disable=true', `-Gsample_variables=userAgent`, ...props],
                volumeMounts: [
                  { name: 'plan', mountPath: '/plan' },
                  { name: 'results', mountPath: '/results' },
                ],
              },
            ],
            volumes: [
              { name: 'plan', configMap: { name: `${name}-plan` } },
              o.resultsClaim ? { name: 'results', persistentVolumeClaim: { claimName: o.resultsClaim } } : { name: 'results', emptyDir: {} },
            ],
          },
        },
      },
    },
  ];
  return docs.map((d) => yaml.dump(d, { noRefs: true, lineWidth: -1 })).join('---\n');
}
