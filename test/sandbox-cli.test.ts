import { afterAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectSandbox } from '../src/sandbox/index.js';
import { runCli } from './helpers/cli.js';
import { diff, scrape, sendRequests } from './helpers/sandbox-load.js';

const dir = join(mkdtempSync(join(tmpdir(), 'sbx-cli-')), 'state');
afterAll(async () => {
  await runCli(['sandbox', 'down', '--state-dir', dir]);
  rmSync(join(dir, '..'), { recursive: true, force: true });
});

describe('clover-cd sandbox', () => {
  it('up --detach, apply -f, fault, status, down: live changes, nothing left behind', async () => {
    const up = await runCli(['sandbox', 'up', '--detach', '--state-dir', dir, '-o', 'json'], {
      timeoutMs: 60_000,
    });
    // The whole result on a failure: stderr says why the detached sandbox did not come up.
    expect({ code: up.code, stderr: up.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const urls = JSON.parse(up.stdout);
    expect(Object.keys(urls)).toEqual(expect.arrayContaining(['ingress', 'metrics', 'jaeger', 'grpc']));
    expect((await runCli(['sandbox', 'up', '--detach', '--state-dir', dir])).code).toBe(2); // already running

    const vs = join(dir, '..', 'vs.yaml');
    writeFileSync(
      vs,
      'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: http-lb}\nspec:\n  hosts: [http-lb]\n  http:\n  - route:\n    - {destination: {host: http-lb, subset: v2}}\n',
    );
    const applied = await runCli(['sandbox', 'apply', '-f', vs, '--state-dir', dir]);
    expect(applied.stdout).toContain('virtualservice/http-lb configured');
    const fault = await runCli([
      'sandbox',
      'fault',
      'http-lb',
      '--subset',
      'v2',
      '--error-rate',
      '1',
      '--abort-status',
      '503',
      '--state-dir',
      dir,
    ]);
    expect(fault.code).toBe(0);
    expect((await sendRequests(urls.ingress + '/', 20)).codes).toEqual({ 503: 20 });
    const byVersion = await scrape(
      urls.metrics,
      'istio_requests_total',
      { reporter: 'destination', destination_service_name: 'http-lb', response_code: '503' },
      'destination_version',
    );
    expect(byVersion).toEqual({ v2: 20 });
    expect(
      (await runCli(['sandbox', 'fault', 'http-lb', '--reset-rate', '3', '--state-dir', dir])).code,
    ).toBe(2);
    await runCli(['sandbox', 'fault', 'http-lb', '--subset', 'v2', '--clear', '--state-dir', dir]);

    // the traffic engineer's path: connectSandbox + platform patch of the weights
    const sb = await connectSandbox(dir);
    const ref = {
      apiVersion: 'networking.istio.io/v1beta1',
      kind: 'VirtualService',
      namespace: 'default',
      name: 'http-lb',
    };
    const cur = (await sb.platform.get(ref))!;
    await sb.platform.patch(
      ref,
      { spec: { http: [{ route: [{ destination: { host: 'http-lb', subset: 'v1' } }] }] } },
      { resourceVersion: cur.metadata.resourceVersion },
    );
    const before = await scrape(
      urls.metrics,
      'istio_requests_total',
      { reporter: 'destination', destination_service_name: 'http-lb' },
      'destination_version',
    );
    await sendRequests(urls.ingress + '/', 10);
    expect(
      diff(
        await scrape(
          urls.metrics,
          'istio_requests_total',
          { reporter: 'destination', destination_service_name: 'http-lb' },
          'destination_version',
        ),
        before,
      ),
    ).toEqual({ v1: 10 });
    await expect(
      sb.platform.patch(ref, { spec: {} }, { resourceVersion: cur.metadata.resourceVersion }),
    ).rejects.toThrow(/conflict/);
    expect((await sb.platform.workloadStatus('default', 'http-lb-v2')).ready).toBe(true);

    // delete -f removes what the file names: http-lb falls back to round robin over both versions
    const deleted = await runCli(['sandbox', 'delete', '-f', vs, '--state-dir', dir]);
    expect([deleted.code, deleted.stdout.trim()]).toEqual([0, 'virtualservice/http-lb deleted']);
    expect((await runCli(['sandbox', 'delete', '-f', vs, '--state-dir', dir])).stdout.trim()).toBe(
      'virtualservice/http-lb not found',
    );
    expect(await sb.platform.get(ref)).toBeUndefined();
    const bad = join(dir, '..', 'bad.yaml');
    writeFileSync(bad, '- just a list\n');
    expect((await runCli(['sandbox', 'delete', '-f', bad, '--state-dir', dir])).code).toBe(2);

    const status = await runCli(['sandbox', 'status', '--state-dir', dir, '-o', 'json']);
    expect(JSON.parse(status.stdout).workloads.map((w: { name: string }) => w.name)).toEqual(
      expect.arrayContaining(['http-lb-v1', 'http-lb-v2', 'snort-ids']),
    );
    const { pid } = JSON.parse(up.stdout);

    const down = await runCli(['sandbox', 'down', '--state-dir', dir]);
    expect(down.code).toBe(0);
    expect(() => process.kill(pid, 0)).toThrow();
    expect(existsSync(dir)).toBe(false);
    expect((await runCli(['sandbox', 'status', '--state-dir', dir])).code).toBe(4);
  });

  it('a state file that is not whole JSON is exit 4 naming the file, never quoting it (it holds the admin token)', async () => {
    const broken = join(dir, '..', 'broken');
    mkdirSync(broken, { recursive: true });
    const file = join(broken, 'sandbox.json');
    for (const text of [
      '{"pid": 1, "token": "s3cret-admin-tok',
      '{"pid": 1, "token": "s3cret-admin-token", x}',
    ]) {
      writeFileSync(file, text);
      const status = await runCli(['sandbox', 'status', '--state-dir', broken]);
      expect(status.code).toBe(4);
      expect(status.stderr).toContain(`sandbox (${file}): the state file is not valid JSON`);
      expect(status.stderr + status.stdout).not.toContain('s3cret');
    }
  });
});
