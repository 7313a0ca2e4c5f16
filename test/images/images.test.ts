import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { CLOVER_CD_VERSION, IMAGE_COMPONENTS, type ImageComponent } from '../../src/contract/images.js';
import { renderKubernetes } from '../../src/jmeter/index.js';
import { orcaConfig } from '../../src/pipelines/preconfigured.js';
import { readRenderInput } from '../../src/pipelines/inputs.js';
import { renderPipeline } from '../../src/pipelines/render.js';
import { loadSpec } from '../../src/spec/load.js';
import { REPO } from '../helpers/cli.js';
import { waitFor } from '../helpers/ports.js';
import { KUBECTL, kustomize } from '../helpers/deploy.js';
import { dockerfileStage } from '../helpers/dockerfile.js';
import { extractImage, runContainer, startPod, type Container, type Image } from '../helpers/image-run.js';

/**
 * What clover-cd generates to run in its images, run as written in the images themselves: the files of the
 * OCI archives `bash scripts/build-images.sh --jmeter` writes to build/images/, under chroot in new namespaces
 * as a runtime and the kubelet would start them (helpers/image-run.ts). Opt-in: `npm run test:images`, as root;
 * each image's tests are skipped, saying why, when its archive is absent.
 */
const archive = (c: ImageComponent) => join(REPO, 'build', 'images', `${c}-${CLOVER_CD_VERSION}.oci.tar`);
const root = process.getuid?.() === 0;
const built = new Set(IMAGE_COMPONENTS.filter((c) => root && existsSync(archive(c))));
for (const c of IMAGE_COMPONENTS) {
  if (!built.has(c))
    console.warn(
      `test:images: ${c} skipped: ${root ? `${archive(c)} does not exist (bash scripts/build-images.sh --jmeter)` : 'needs root (chroot, unshare, mount)'}`,
    );
}
const withImage = (c: ImageComponent) => (built.has(c) ? it : it.skip);

/** The Dockerfile stage each image corresponds to. */
const DOCKERFILE: Record<ImageComponent, { file: string; stage?: string }> = {
  'clover-cd': { file: 'Dockerfile' },
  'clover-cd-jmeter': { file: 'Dockerfile', stage: 'jmeter' },
  clovisor: { file: 'Dockerfile.clovisor' },
};

const dir = mkdtempSync(join(tmpdir(), 'clover-images-'));
const images = new Map<ImageComponent, Image>();
beforeAll(() => {
  for (const c of built) images.set(c, extractImage(archive(c), dir, c));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A spec as rendered pipelines carry it: JSON, with the load plan inlined. */
function specJson(file: string): string {
  const doc = yaml.load(readFileSync(join(REPO, file), 'utf8')) as { load: { plan: unknown } };
  doc.load.plan = yaml.load(readFileSync(join(REPO, 'examples', doc.load.plan as string), 'utf8'));
  return JSON.stringify(doc);
}

describe.each(IMAGE_COMPONENTS)('image %s', (c) => {
  withImage(c)(
    "has the Dockerfile's entrypoint, PATH, user and working directory, and clover-cd on PATH",
    () => {
      const { rootfs, config } = images.get(c)!;
      const want = dockerfileStage(join(REPO, DOCKERFILE[c].file), DOCKERFILE[c].stage);
      const env = Object.fromEntries(
        (config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
      );
      expect({
        entrypoint: config.Entrypoint,
        user: config.User,
        workdir: config.WorkingDir,
        env: Object.fromEntries(Object.keys(want.env).map((k) => [k, env[k]])),
      }).toEqual({
        entrypoint: want.entrypoint,
        user: want.user,
        workdir: want.workdir,
        env: want.env,
      });
      expect(Object.keys(env).sort()).toEqual(Object.keys(want.env).sort());
      expect(readlinkSync(join(rootfs, 'usr/local/bin/clover-cd'))).toBe('/app/bin/clover-cd.js');
      for (const f of [
        'usr/local/bin/node',
        'usr/bin/env',
        'app/package.json',
        'app/bin/clover-cd.js',
        'app/dist/cli/main.js',
        'app/node_modules/commander',
        'app/examples/sdc-canary.yaml',
        'app/deploy/sdc/istio.yaml',
      ]) {
        expect({ f, exists: existsSync(join(rootfs, f)) }).toEqual({ f, exists: true });
      }
      expect(config.Labels?.['org.opencontainers.image.version']).toBe(CLOVER_CD_VERSION);
    },
  );

  withImage(c)('runs its entrypoint: clover-cd --version, and stage --help that teaches', async () => {
    const image = images.get(c)!;
    const version = await runContainer(image, { args: ['--version'] });
    expect({ code: version.code, stdout: version.stdout.trim(), stderr: version.stderr }).toEqual({
      code: 0,
      stdout: CLOVER_CD_VERSION,
      stderr: '',
    });
    const help = await runContainer(image, { args: ['stage', '--help'] });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Examples:\n\s+clover-cd stage /);
  });
});

describe('generated command lines, as written', () => {
  withImage('clover-cd')('the clover-cd image has no shell: nothing generated may need one', () => {
    const { rootfs } = images.get('clover-cd')!;
    for (const sh of ['bin/sh', 'usr/bin/sh', 'bin/bash', 'usr/bin/bash'])
      expect({ sh, exists: existsSync(join(rootfs, sh)) }).toEqual({ sh, exists: false });
  });

  withImage('clover-cd')(
    "the preconfigured Run Job (orca-config), with the values Orca's parameters map into its env",
    async () => {
      const job = orcaConfig([loadSpec(join(REPO, 'examples/sdc-canary-preconfigured.yaml')).spec]).config.job
        .preconfigured.kubernetes[0] as {
        manifest: any;
        parameters: Array<{ name: string; mapping: string }>;
      };
      const container = job.manifest.spec.template.spec.containers[0] as Container & { image: string };
      /** Orca sets each parameter at its mapping: containers[0].env[i].value. */
      const filled = (values: Record<string, string>): Container => {
        const env = structuredClone(container.env!);
        for (const p of job.parameters) {
          const i = Number(/env\[(\d+)\]\.value$/.exec(p.mapping)![1]);
          if (p.name in values) env[i].value = values[p.name];
        }
        return { command: container.command, args: container.args, env };
      };
      const image = images.get('clover-cd')!;
      // A release spec with an error: exit 2 naming the variable and the field, before anything is done.
      const bad = JSON.parse(specJson('examples/sdc-canary-preconfigured.yaml'));
      bad.strategy.canary.steps = [10, 150];
      const invalid = await runContainer(
        image,
        filled({ action: 'traffic', step: '1', spec: JSON.stringify(bad), executionId: '01HX' }),
      );
      expect(invalid.argv).toEqual([
        'clover-cd',
        'stage',
        'traffic',
        '--step',
        '1',
        '--spec-env',
        'CLOVER_CD_SPEC',
        '--property-format',
        'spinnaker',
      ]);
      expect({ code: invalid.code, stderr: invalid.stderr }).toEqual({
        code: 2,
        stderr: expect.stringMatching(/CLOVER_CD_SPEC: invalid release spec: .*strategy\.canary\.steps/),
      });
      // Actions without a step get an empty one, which means none.
      const empty = await runContainer(image, filled({ action: 'promote', step: '', spec: '' }));
      expect(empty.argv).toEqual([
        'clover-cd',
        'stage',
        'promote',
        '--step',
        '',
        '--spec-env',
        'CLOVER_CD_SPEC',
        '--property-format',
        'spinnaker',
      ]);
      expect({ code: empty.code, stderr: empty.stderr }).toEqual({
        code: 2,
        stderr: expect.stringContaining('environment variable CLOVER_CD_SPEC is empty'),
      });
      const unknown = await runContainer(image, filled({ action: 'deploy; rm -rf /', step: '', spec: '{}' }));
      expect({ code: unknown.code, stderr: unknown.stderr }).toEqual({
        code: 2,
        stderr: expect.stringContaining('unknown action "deploy; rm -rf /"'),
      });
    },
  );

  withImage('clover-cd')('every rendered runJobManifest stage of examples/sdc-ab.yaml', async () => {
    const pipeline = renderPipeline(readRenderInput(loadSpec(join(REPO, 'examples/sdc-ab.yaml')))).pipeline;
    const stages = pipeline.stages.filter((s) => s.type === 'runJobManifest');
    expect(stages.length).toBeGreaterThanOrEqual(5);
    const image = images.get('clover-cd')!;
    const actions = new Set<string>();
    for (const stage of stages) {
      const container = structuredClone(
        (stage.manifest as any).spec.template.spec.containers[0],
      ) as Container & { image: string };
      expect(container.image).toBe(`ghcr.io/clover-cd/clover-cd:${CLOVER_CD_VERSION}`);
      // Orca evaluates the SpEL in the manifest before it creates the Job.
      for (const e of container.env ?? []) e.value = e.value?.replace("${execution['id']}", '01HXAMPLE');
      const action = container.args![1];
      if (actions.has(action)) continue;
      actions.add(action);
      // No cluster here (no service account, no kubeconfig): each action gets as far as its first API call.
      const r = await runContainer(image, container, { timeoutMs: 120_000 });
      expect(r.argv.slice(0, 3)).toEqual(['clover-cd', 'stage', action]);
      expect({ action, code: r.code, stderr: r.stderr }).toEqual({
        action,
        code: 4,
        stderr: expect.stringMatching(/Kubernetes API .*\n\s+check: /),
      });
    }
    expect([...actions].sort()).toEqual(expect.arrayContaining(['deploy', 'gate', 'load', 'traffic']));
  });

  // Against a real API server when REALK8S_DIR names one (../shared/tools/real-apiserver): the pod's
  // in-cluster configuration (service account token, CA, KUBERNETES_SERVICE_*), as the kubelet provides it.
  const apiserver = process.env.REALK8S_DIR
    ? join(process.env.REALK8S_DIR, 'run', 'admin.kubeconfig')
    : undefined;
  if (!apiserver || !existsSync(apiserver))
    console.warn(
      'test:images: the Run Job stages run without a cluster; REALK8S_DIR=<a real-apiserver dir> runs them against its API server too',
    );
  (built.has('clover-cd') && apiserver && existsSync(apiserver) ? it : it.skip)(
    'rendered Run Job stages of examples/sdc-ab.yaml move the traffic with the service account of deploy/',
    async () => {
      const kubeconfig = apiserver!;
      const kubectl = (args: string[], input?: string) => {
        const r = spawnSync(KUBECTL, [`--kubeconfig=${kubeconfig}`, '--request-timeout=20s', ...args], {
          cwd: REPO,
          encoding: 'utf8',
          input,
        });
        if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      const served = new Set(kubectl(['api-versions']).split('\n'));
      kubectl([
        'apply',
        '-k',
        served.has('policy/v1') ? 'deploy/clover-cd' : 'deploy/clover-cd/overlays/kube-1.20',
      ]);
      kubectl(['apply', '-f', 'deploy/sdc/workloads.yaml']);
      // A fresh VirtualService (no release recorded on it), 100% v1.
      kubectl([
        '-n',
        'default',
        'delete',
        'virtualservices.networking.istio.io',
        'http-lb',
        '--ignore-not-found',
      ]);
      kubectl(['apply', '-f', 'deploy/sdc/istio.yaml']);
      // No controllers run on this API server: report the candidate's rollout as a controller would.
      const generation = JSON.parse(
        kubectl(['-n', 'default', 'get', 'deployment', 'http-lb-v2', '-o', 'json']),
      ).metadata.generation as number;
      kubectl([
        '-n',
        'default',
        'patch',
        'deployment',
        'http-lb-v2',
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({
          status: {
            observedGeneration: generation,
            replicas: 1,
            updatedReplicas: 1,
            readyReplicas: 1,
            availableReplicas: 1,
          },
        }),
      ]);
      const token = JSON.parse(
        kubectl(
          ['create', '--raw', '/api/v1/namespaces/clover-system/serviceaccounts/clover-cd/token', '-f', '-'],
          JSON.stringify({
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: { expirationSeconds: 600 },
          }),
        ),
      ).status.token as string;
      const admin = readFileSync(kubeconfig, 'utf8');
      const server = new URL(/server: (\S+)/.exec(admin)![1]);
      const sa = join(dir, 'serviceaccount');
      mkdirSync(sa, { recursive: true });
      writeFileSync(join(sa, 'token'), token);
      writeFileSync(join(sa, 'namespace'), 'clover-system');
      writeFileSync(join(sa, 'ca.crt'), readFileSync(/certificate-authority: (\S+)/.exec(admin)![1]));
      const inCluster = {
        mounts: [{ source: sa, target: '/var/run/secrets/kubernetes.io/serviceaccount' }],
        serviceEnv: { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port },
      };

      const pipeline = renderPipeline(readRenderInput(loadSpec(join(REPO, 'examples/sdc-ab.yaml')))).pipeline;
      const stage = (action: string) => {
        const c = structuredClone(
          (
            pipeline.stages.find(
              (s) =>
                s.type === 'runJobManifest' &&
                (s.manifest as any).spec.template.spec.containers[0].args[1] === action,
            )!.manifest as any
          ).spec.template.spec.containers[0],
        ) as Container;
        return c;
      };
      const image = images.get('clover-cd')!;
      const vs = () =>
        JSON.parse(
          kubectl(['-n', 'default', 'get', 'virtualservices.networking.istio.io', 'http-lb', '-o', 'json']),
        ).spec.http as Array<{
          match?: unknown[];
          route: Array<{ destination: { subset: string }; weight?: number }>;
        }>;
      const executionId = `images-test-${Date.now()}`;
      const withExecution = (c: Container) => ({
        ...c,
        env: c.env!.map((e) => (e.name === 'CLOVER_CD_EXECUTION_ID' ? { ...e, value: executionId } : e)),
      });
      const deploy = await runContainer(image, withExecution(stage('deploy')), {
        ...inCluster,
        timeoutMs: 180_000,
      });
      expect({ code: deploy.code, stderr: deploy.stderr, stdout: deploy.stdout }).toEqual({
        code: 0,
        stderr: expect.any(String),
        stdout: expect.stringContaining('SPINNAKER_PROPERTY_CLOVER_CD_STATUS=SUCCEEDED'),
      });
      const traffic = await runContainer(image, withExecution(stage('traffic')), {
        ...inCluster,
        timeoutMs: 180_000,
      });
      expect({ code: traffic.code, stdout: traffic.stdout }).toEqual({
        code: 0,
        stdout: expect.stringContaining('SPINNAKER_PROPERTY_CLOVER_CD_STATUS=SUCCEEDED'),
      });
      // The A/B match route now sends Chrome users to v2; everyone else stays on v1.
      const routes = vs();
      expect(routes.filter((r) => r.match).flatMap((r) => r.route.map((d) => d.destination.subset))).toEqual([
        'v2',
      ]);
      expect(routes.at(-1)!.route.map((d) => [d.destination.subset, d.weight ?? 0])).toEqual([
        ['v1', 100],
        ['v2', 0],
      ]);
    },
  );

  withImage('clover-cd-jmeter')(
    'load render --kubernetes: an engine and the controller run the plan, in one pod network with cluster DNS',
    async () => {
      const pod = await startPod('clover-cd-load-controller');
      // The load's target, in the pod's network namespace: one line per request it answers.
      const target = spawn(
        'nsenter',
        [
          `--net=/proc/${pod.pid}/ns/net`,
          process.execPath,
          '-e',
          "require('http').createServer((q,s)=>{console.log('hit');s.end('ok')}).listen(18080,'127.0.0.1',()=>console.log('listening'))",
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let targetLog = '';
      target.stdout!.on('data', (d) => (targetLog += d));
      let engineRun: ReturnType<typeof runContainer> | undefined;
      try {
        await waitFor('the load target to listen', async () => targetLog.includes('listening'), 30_000);
        const plan = {
          load_spec: { num_threads: 2, loops: 5 },
          url_list: [{ name: 'home', url: 'http://127.0.0.1:18080/', method: 'GET' }],
        };
        const docs = yaml.loadAll(renderKubernetes(plan, { engines: 1, namespace: 'load' })) as any[];
        const planDir = join(dir, 'plan');
        const results = join(dir, 'results');
        mkdirSync(planDir, { recursive: true });
        mkdirSync(results, { recursive: true, mode: 0o777 });
        chmodSync(results, 0o777); // an emptyDir is world-writable
        writeFileSync(join(planDir, 'plan.yaml'), docs.find((d) => d.kind === 'ConfigMap').data['plan.yaml']);
        const engine = docs.find((d) => d.kind === 'StatefulSet').spec.template.spec.containers[0];
        const controller = docs.find((d) => d.kind === 'Job').spec.template.spec.containers[0];
        const image = images.get('clover-cd-jmeter')!;
        // Cluster DNS for the engine's stable name, as CoreDNS would answer it inside the pod network.
        const hosts =
          '127.0.0.1 localhost clover-cd-load-controller clover-cd-load-engine-0 clover-cd-load-engine-0.clover-cd-load-engine.load.svc\n';
        engineRun = runContainer(image, engine, {
          pod,
          hosts,
          fieldRefs: { 'metadata.name': 'clover-cd-load-engine-0' },
          timeoutMs: 240_000,
        });
        let engineLog = '';
        engineRun.child.stdout!.on('data', (d) => (engineLog += d));
        const engineExit = engineRun.then((r) => `exited ${r.code}: ${r.stdout}${r.stderr}`);
        await waitFor(
          'the engine to bind its RMI object',
          async () =>
            /Created remote object/.test(engineLog) ||
            (await Promise.race([engineExit, Promise.resolve('')])) !== '',
          120_000,
          200,
        );
        expect(engineLog).toMatch(/Created remote object/);

        const run = await runContainer(image, controller, {
          pod,
          hosts,
          mounts: [
            { source: planDir, target: '/plan' },
            { source: results, target: '/results' },
          ],
          timeoutMs: 240_000,
        });
        expect(run.argv).toEqual([
          'clover-cd',
          'load',
          'run',
          '/plan/plan.yaml',
          '--engine',
          'jmeter',
          '--remote',
          'clover-cd-load-engine-0.clover-cd-load-engine.load.svc:1099',
          '--results',
          '/results/results.jtl',
        ]);
        expect({ code: run.code, stderr: run.stderr }).toEqual({
          code: 0,
          stderr: expect.stringContaining('jmeter run: 10 samples'),
        });
        expect(targetLog.match(/^hit$/gm)).toHaveLength(10);
        // The engine stops on SIGTERM, as the kubelet stops it.
        engineRun.signal('SIGTERM');
        const engineDone = await engineRun;
        expect({ argv: engineDone.argv, code: engineDone.code }).toEqual({
          argv: [
            'clover-cd',
            'load',
            'server',
            '--port',
            '1099',
            '--local-port',
            '50000',
            '--hostname',
            'clover-cd-load-engine-0.clover-cd-load-engine.load.svc',
          ],
          code: 130,
        });
      } finally {
        engineRun?.kill();
        target.kill('SIGKILL');
        pod.stop();
      }
    },
  );

  withImage('clovisor')("the DaemonSet's container of deploy/clovisor, and its preStop hook", async () => {
    const daemonset = kustomize('deploy/clovisor').find((d) => d.kind === 'DaemonSet')! as any;
    const configMap = kustomize('deploy/clovisor').find((d) => d.kind === 'ConfigMap')! as any;
    const container = daemonset.spec.template.spec.containers[0] as Container & {
      lifecycle: { preStop: { exec: { command: string[] } } };
    };
    const config = join(dir, 'clovisor-config');
    mkdirSync(config, { recursive: true });
    writeFileSync(join(config, 'clovisor.yaml'), configMap.data['clovisor.yaml']);
    const image = images.get('clovisor')!;
    const run = await runContainer(image, container, {
      mounts: [{ source: config, target: '/etc/clovisor' }],
      fieldRefs: { 'spec.nodeName': 'node-1' },
      timeoutMs: 120_000,
    });
    expect(run.argv).toEqual([
      'clover-cd',
      'clovisor',
      'run',
      '--config',
      '/etc/clovisor/clovisor.yaml',
      '--listen',
      '0.0.0.0:9464',
    ]);
    // The shipped config reads its targets from Clover's Redis first: not reachable here, exit 4 saying so.
    expect({ code: run.code, stderr: run.stderr }).toEqual({
      code: 4,
      stderr: expect.stringMatching(/error: Redis \(redis:\/\/redis\.clovisor:6379\): .*\n\s+check: /),
    });
    const preStop = await runContainer(
      image,
      { command: container.lifecycle.preStop.exec.command },
      { timeoutMs: 60_000 },
    );
    expect(preStop.argv).toEqual(['clover-cd', 'clovisor', 'cleanup']);
    expect(lstatSync(join(image.rootfs, 'app/build/clovisor/clovisor.bpf.o')).isFile()).toBe(true);
    expect({ code: preStop.code, stdout: preStop.stdout }).toEqual({
      code: 0,
      stdout: 'cleaned /sys/fs/bpf/clover-cd: removed 0\n',
    });
  });
});
