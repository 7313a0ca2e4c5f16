/**
 * A sandbox with the SDC sample for release tests: specs written to a temp folder, the sandbox published
 * the way `clover-cd sandbox up --detach` does (so CLI processes reach it), a reset between tests, and the
 * traffic actually observed per version (a short burst of the spec's load through the ingress).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { observeSplit, openWindow, runLoadStage } from '../../src/stages/index.js';
import { loadSpec } from '../../src/spec/load.js';
import type { Mesh } from '../../src/contract/index.js';
import type { KubeObject } from '../../src/services/platform.js';
import { BIN, REPO } from './cli.js';
import { SPLIT_RULE_OF_OTHER_TESTS } from './rules.js';

export const VS = {
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'VirtualService',
  namespace: 'default',
  name: 'http-lb',
};

/** The SDC sample's HTTPRoute (deploy/sdc/gateway-api/), which holds http-lb's routes on service.mesh gateway-api. */
export const HTTP_ROUTE = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  namespace: 'default',
  name: 'http-lb',
};

export interface ReleaseLab {
  mesh: Mesh;
  sb: Sandbox;
  dir: string;
  stateDir: string;
  evidenceDir: string;
  initial: KubeObject;
  writeSpec(
    name: string,
    strategy: Record<string, unknown>,
    opts?: {
      rules?: unknown[];
      spinnaker?: Record<string, unknown>;
      threads?: number;
      /** Requests per second, all threads together (default 400; null: as fast as the threads go). */
      throughput?: number | null;
      gate?: Record<string, unknown>;
      /** Load fields that replace the builtin engine's (engine, engines). */
      load?: Record<string, unknown>;
    },
  ): string;
  /** The object that holds http-lb's routes and the release state: the VirtualService, or the HTTPRoute. */
  vs(): Promise<KubeObject>;
  observed(file: string): Promise<{ stable: number; candidate: number }>;
  /** `clover-cd release run <file> --auto-approve` on this sandbox through the CLI binary, with `extra` flags. */
  releaseRun(file: string, extra?: string[]): CliRun;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export interface CliRun {
  child: ChildProcessByStdio<null, Readable, Readable>;
  exited: Promise<number | null>;
  stderr(): string;
}

export async function startReleaseLab(prefix: string, mesh: Mesh = 'istio'): Promise<ReleaseLab> {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const stateDir = join(dir, 'state');
  const sb = await startSandbox({ stateDir, mesh });
  const ROUTES = mesh === 'istio' ? VS : HTTP_ROUTE;
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(
    join(stateDir, 'sandbox.json'),
    JSON.stringify({
      pid: process.pid,
      urls: sb.urls,
      token: sb.core.adminToken,
      startedAt: new Date().toISOString(),
      netns: false,
    }),
  );
  const vs = async () => (await sb.platform.get(ROUTES))!;
  const initial = await vs();
  return {
    mesh,
    sb,
    dir,
    stateDir,
    evidenceDir: join(dir, 'evidence'),
    initial,
    vs,
    writeSpec(name, strategy, opts = {}) {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(
        file,
        yaml.dump({
          apiVersion: 'clover-cd/v1',
          kind: 'Release',
          metadata: { name },
          application: 'sdc',
          service: {
            name: 'http-lb',
            namespace: 'default',
            port: 9180,
            stable: 'v1',
            candidate: 'v2',
            readyTimeout: '20s',
            ...(mesh === 'istio' ? {} : { mesh }),
          },
          strategy,
          load: {
            engine: 'builtin',
            ...opts.load,
            plan: {
              // 400 requests a second decide every rule these specs use within a few seconds; faster load only
              // spends the CPU that the other suites (and a busy machine) need on spans nobody reads.
              load_spec: {
                num_threads: opts.threads ?? 4,
                loops: -1,
                duration: 3,
                ...(opts.throughput === null ? {} : { throughput: opts.throughput ?? 400 }),
              },
              url_list: [
                {
                  name: 'root',
                  url: 'http://proxy-access-control.default:9180/',
                  method: 'GET',
                  'user-agent': 'chrome',
                },
                {
                  name: 'test',
                  url: 'http://proxy-access-control.default:9180/clover/testurl',
                  method: 'GET',
                  'user-agent': 'safari',
                },
              ],
            },
          },
          // The window closes as soon as the rules decide: a clean candidate is shown below 5% after ~100 requests
          // (below 1% it takes ~450); a busy machine gets up to a minute.
          gate: {
            minSamples: 15,
            maxWindow: '60s',
            ...opts.gate,
            rules: opts.rules ?? [{ errorRate: { max: '5%' } }, SPLIT_RULE_OF_OTHER_TESTS],
          },
          ...(opts.spinnaker ? { spinnaker: opts.spinnaker } : {}),
        }),
      );
      return file;
    },
    releaseRun(file, extra = []) {
      const args = ['release', 'run', file, ...extra, '--auto-approve', '--platform', 'sandbox'];
      args.push('--state-dir', stateDir, '--evidence-dir', join(dir, 'evidence'));
      const child = spawn(process.execPath, [BIN, ...args], {
        cwd: REPO,
        env: { ...process.env, NODE_OPTIONS: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      return { child, exited, stderr: () => stderr };
    },
    async observed(file) {
      const { spec } = loadSpec(file);
      const w = await openWindow(spec, sb.platform.endpoints());
      await runLoadStage(sb.platform, spec, { durationS: 0.75 });
      return observeSplit(spec, sb.platform.endpoints(), w);
    },
    async reset() {
      await sb.setFault('http-lb', 'v2', null);
      const cur = await vs();
      const annotations = Object.fromEntries(
        Object.keys(cur.metadata.annotations ?? {})
          .filter((k) => k.startsWith('clover-cd.io/'))
          .map((k) => [k, null]),
      );
      await sb.platform.patch(ROUTES, { metadata: { annotations }, spec: initial.spec! });
    },
    async stop() {
      await sb.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
