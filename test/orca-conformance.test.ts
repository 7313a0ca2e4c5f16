/**
 * `pipeline orca-config` and the local Orca runner against Orca's, kork's and Spring's own rules
 * (test/conformance/orca-webhook.json, orca-preconfigured-job.json, kork-secret-engines.json): every key the fragment
 * writes is one Orca binds, label keys survive Spring's map binding, references are ones the named tool resolves,
 * and the runner treats each HTTP status of a webhook stage as Orca does (401/403 TERMINAL at once).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { runCli } from './helpers/cli.js';
import { orcaConfigYaml } from '../src/cli/pipeline-orca.js';
import { resolveSecretReferences, runWebhookStage } from '../src/pipelines/local-run/index.js';
import {
  orcaConfig,
  PRECONFIGURED_WEBHOOK_FIELDS,
  preconfiguredWebhooks,
  springMapKey,
} from '../src/pipelines/preconfigured.js';
import {
  parseSecretReference,
  SECRET_ENGINE_NAMES,
  SECRET_ENGINES,
  secretReferenceProblem,
  type SecretEngine,
} from '../src/pipelines/secret-refs.js';
import { loadSpec } from '../src/spec/load.js';
import { InvalidInputError } from '../src/util/errors.js';

type Obj = Record<string, any>;
const data = (file: string) => JSON.parse(readFileSync(join('test/conformance', file), 'utf8'));
const webhook = data('orca-webhook.json');
const job = data('orca-preconfigured-job.json');
const secrets = data('kork-secret-engines.json');
const spec = loadSpec('examples/sdc-canary-preconfigured.yaml').spec;

describe('the orca-local.yml fragment holds only what Orca binds', () => {
  const { config } = orcaConfig([spec]);
  const doc = yaml.load(orcaConfigYaml(config)) as Obj;

  it('every preconfigured webhook key is a field of PreconfiguredWebhook; signalCancellation is on', () => {
    expect([...PRECONFIGURED_WEBHOOK_FIELDS].sort()).toEqual(
      Object.keys(webhook.preconfigured.fields).sort(),
    );
    for (const hook of doc.webhook.preconfigured as Obj[]) {
      expect(Object.keys(hook).filter((k) => !(k in webhook.preconfigured.fields))).toEqual([]);
      expect(hook.signalCancellation).toBe(true);
      expect(hook.cancelEndpoint).toMatch(/\/cancel$/);
      for (const p of hook.parameters)
        expect(
          Object.keys(p).filter((k) => !webhook.preconfigured.parameterFields.fields.includes(k)),
        ).toEqual([]);
      expect(typeof hook.payload).toBe('string');
      for (const v of Object.values(hook.customHeaders as Obj))
        expect(Array.isArray(v) && v.every((x) => typeof x === 'string')).toBe(true);
    }
  });

  it('the Run Job: every key a field Orca binds, parameters with their mapping, label keys that survive Spring', () => {
    const [entry] = doc.job.preconfigured.kubernetes as Obj[];
    expect(Object.keys(entry).filter((k) => !job.properties.fields.includes(k))).toEqual([]);
    for (const p of entry.parameters)
      expect(Object.keys(p).filter((k) => !job.parameters.fields.includes(k))).toEqual([]);
    for (const labels of [entry.manifest.metadata.labels, entry.manifest.spec.template.metadata.labels]) {
      const bound = Object.fromEntries(Object.entries(labels as Obj).map(([k, v]) => [springMapKey(k), v]));
      expect(bound).toEqual({ 'app.kubernetes.io/name': 'clover-cd' });
    }
  });

  it.each(job.springMapKeys.vectors.filter((v: Obj) => v.valueType !== 'Object') as Obj[])(
    'Spring binds the map key $yamlKey as $boundKey',
    (v) => {
      expect(springMapKey(v.yamlKey)).toBe(v.boundKey);
    },
  );

  it('reading a fragment back, Orca keeps only its fields: the rest is reported as dropped', () => {
    const dropped: string[] = [];
    const edited = {
      webhook: { preconfigured: [{ ...doc.webhook.preconfigured[0], retryStatusCodes: [503] }] },
    };
    const [entry] = preconfiguredWebhooks(edited, 'orca-local.yml', (p) => dropped.push(p)).values();
    expect(dropped).toEqual(['webhook.preconfigured[0].retryStatusCodes']);
    expect(entry).not.toHaveProperty('retryStatusCodes');
  });
});

describe('secret references the named tool resolves (kork-secret-engines.json)', () => {
  it.each(secrets.syntax.vectors as Obj[])('kork parses $value as engine $engine', (v) => {
    const ref = parseSecretReference(v.value);
    if (v.engine === null) expect(ref).toBeUndefined();
    else expect(ref).toEqual({ engine: v.engine, params: v.params });
  });

  it('the engines clover-cd writes are exactly the ones the data lists, with the same required parameters', () => {
    expect([...SECRET_ENGINE_NAMES].sort()).toEqual(Object.keys(secrets.engines).sort());
    for (const e of SECRET_ENGINE_NAMES) {
      expect(Object.keys(SECRET_ENGINES[e].required).sort()).toEqual(
        Object.keys(secrets.engines[e].required).sort(),
      );
      expect(secretReferenceProblem(secrets.engines[e].example, e)).toBeUndefined();
      for (const missing of Object.keys(secrets.engines[e].required)) {
        const without = secrets.engines[e].example
          .split('!')
          .filter((part: string) => !part.startsWith(`${missing}:`))
          .join('!');
        expect(secretReferenceProblem(without, e)).toMatch(new RegExp(`needs ${missing}:`));
      }
    }
    // What each tool resolves: the Operator all five, Halyard (kork alone) not k8s.
    expect(secrets.tools.halyard.engines).not.toContain('k8s');
  });

  it.each(SECRET_ENGINE_NAMES.map((e) => [e]))(
    'orca-config --secrets %s: writes its reference, and the header names the tool',
    async (engine) => {
      const ref = secrets.engines[engine as SecretEngine].example;
      const r = await runCli(['pipeline', 'orca-config', '--secrets', engine, '--auth-secret', ref]);
      expect(r.code).toBe(0);
      expect((yaml.load(r.stdout) as Obj).webhook.preconfigured[0].customHeaders.Authorization).toEqual([
        ref,
      ]);
      expect(r.stdout).toContain(SECRET_ENGINES[engine as SecretEngine].tool);
    },
  );

  it('refuses (exit 2) a reference of another engine, and says the default', async () => {
    const r = await runCli([
      'pipeline',
      'orca-config',
      'examples/sdc-canary-preconfigured.yaml',
      '--secrets',
      's3',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/names engine "k8s" but the fragment is for s3/);
    const help = await runCli(['pipeline', 'orca-config', '--help']);
    expect(help.stdout).toMatch(/--secrets <engine>[\s\S]*default: "k8s"/);
    expect(help.stdout).toContain('Which tool resolves the reference decides --secrets (default k8s)');
  });

  it('without a reference the spec must state the mesh identity; a local run stops at a reference no tool resolves', async () => {
    const none = await runCli(['pipeline', 'orca-config', '--stage-server', 'http://clover-cd:8080']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('refuses a call without credentials');
    const mesh = orcaConfig([
      {
        ...spec,
        spinnaker: {
          ...spec.spinnaker!,
          stageServer: {
            url: 'http://x:8080',
            meshAuth: { principal: 'spiffe://cluster.local/ns/spinnaker/sa/spin-orca' },
          },
        },
      },
    ]);
    expect(mesh.config.webhook.preconfigured[0]).toMatchObject({
      customHeaders: { 'Content-Type': ['application/json'] },
    });
    const entries = preconfiguredWebhooks({
      webhook: {
        preconfigured: [
          { type: 't', url: 'http://x', customHeaders: { Authorization: ['encrypted:vault!p:x!k:y'] } },
        ],
      },
    });
    expect(() => resolveSecretReferences(entries, 'Bearer t')).toThrow(InvalidInputError);
    expect(() => resolveSecretReferences(entries, 'Bearer t')).toThrow(/Secret Engine does not exist: vault/);
  });
});

describe('the local runner answers each webhook status as Orca does (orca-webhook.json)', () => {
  let server: Server;
  let url: string;
  /** Per path: the statuses to answer in turn (the last repeats), and how many requests came. */
  const plans = new Map<string, { statuses: number[]; seen: number }>();
  let n = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const plan = plans.get(req.url!.split('?')[0]) ?? { statuses: [404], seen: 0 };
      const status = plan.statuses[Math.min(plan.seen++, plan.statuses.length - 1)];
      res.writeHead(status, { 'content-type': 'application/json' });
      const poll = req.url!.startsWith('/poll');
      res.end(
        JSON.stringify(
          status >= 300
            ? { error: status }
            : poll
              ? { status: 'SUCCEEDED' }
              : { statusUrl: `${url}/poll${req.url}`, status: 'RUNNING' },
        ),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const polling = {
    waitForCompletion: true,
    statusUrlResolution: 'webhookResponse' as const,
    statusUrlJsonPath: '$.statusUrl',
    statusJsonPath: '$.status',
    successStatuses: 'SUCCEEDED',
    terminalStatuses: 'FAILED',
  };

  it.each(webhook.create.vectors as Obj[])(
    'create call answered $status (failFast $failFastStatusCodes): $result',
    async (v) => {
      const path = `/create-${++n}`;
      plans.set(path, { statuses: [v.status], seen: 0 });
      const res = await runWebhookStage(
        {
          url: url + path,
          failFastStatusCodes: v.failFastStatusCodes,
          webhookRetryStatusCodes: v.webhookRetryStatusCodes,
          ...polling,
        },
        { createAttempts: 2, pollIntervalMs: 1 },
      );
      expect(res.status).toBe('TERMINAL');
      // RUNNING in Orca means "call again": the runner called again and ended only when out of attempts.
      expect(plans.get(path)!.seen).toBe(v.result === 'RUNNING' ? 2 : 1);
      expect(res.context.webhook.statusCodeValue).toBe(v.status);
    },
  );

  it.each(webhook.monitor.vectors as Obj[])(
    'a poll answered $status after $earlier (retries $retries): $result',
    async (v) => {
      const path = `/monitor-${++n}`;
      plans.set(`/poll${path}`, { statuses: [...(v.earlier ?? []), v.status, 200], seen: 0 });
      plans.set(path, { statuses: [202], seen: 0 });
      const res = await runWebhookStage(
        { url: url + path, retries: v.retries, ...polling },
        { pollIntervalMs: 1 },
      );
      const polls = plans.get(`/poll${path}`)!.seen;
      // TERMINAL ends the stage at that poll; RUNNING polls again, and the next answer (200, SUCCEEDED) ends it.
      expect({ status: res.status, polls }).toEqual(
        v.result === 'TERMINAL'
          ? { status: 'TERMINAL', polls: (v.earlier ?? []).length + 1 }
          : { status: 'SUCCEEDED', polls: (v.earlier ?? []).length + 2 },
      );
    },
    20_000,
  );
});
