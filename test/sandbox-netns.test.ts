import { afterAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandbox } from '../src/sandbox/index.js';
import { sandboxStatus } from '../src/sandbox/control.js';
import { runCli } from './helpers/cli.js';
import { waitFor } from './helpers/ports.js';
import { diff, scrape, sendRequests } from './helpers/sandbox-load.js';

/** --netns mode: real namespaces, veth pairs on a bridge, one runner per namespace; root only. */
const notRoot = process.getuid?.() !== 0;
if (notRoot)
  console.log(
    'sandbox --netns tests skipped: not running as root (they create network namespaces and veth pairs)',
  );
const d = notRoot ? describe.skip : describe;

const sh = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const namespacesOf = (sid: string) =>
  sh('ip', ['netns', 'list'])
    .split('\n')
    .filter((l) => l.startsWith(`ccd-${sid}-`));
const linksOf = (sid: string) =>
  sh('ip', ['-o', 'link', 'show'])
    .split('\n')
    .filter((l) => l.includes(`ccd-${sid}-`) || l.includes(`ccd-br-${sid}`));
const runnersOf = (sid: string) =>
  sh('ps', ['-eo', 'args'])
    .split('\n')
    .filter((l) => l.includes(`"netns":"ccd-${sid}-`));
const packets = (veth: string) =>
  Number(readFileSync(`/sys/class/net/${veth}/statistics/tx_packets`, 'utf8')) +
  Number(readFileSync(`/sys/class/net/${veth}/statistics/rx_packets`, 'utf8'));

const tmp = mkdtempSync(join(tmpdir(), 'sbx-netns-'));
afterAll(async () => {
  await runCli(['sandbox', 'down', '--state-dir', join(tmp, 'state')]);
  rmSync(tmp, { recursive: true, force: true });
});

d('sandbox --netns', () => {
  it('runs each workload in its own namespace joined by veths, routes real traffic across them, and leaves nothing behind', async () => {
    const sb = await startSandbox({ netns: true });
    const sid = sb.core.netns!.sid;
    let stopped = false;
    try {
      const pods = sandboxStatus(sb.core).workloads.filter((w) => w.netns);
      expect(pods.map((w) => w.name).sort()).toEqual([
        'clover-server1',
        'clover-server2',
        'clover-server3',
        'clover-server4',
        'clover-server5',
        'http-lb-v1',
        'http-lb-v2',
        'proxy-access-control',
        'snort-ids',
      ]);
      for (const w of pods) {
        expect(existsSync(w.netns!)).toBe(true);
        expect(w.hostVeth).toMatch(new RegExp(`^ccd-${sid}-\\d\\d$`));
        expect(w.podIp).toMatch(/^10\.\d+\.\d+\.\d+$/);
        // the pod side is eth0 with the pod IP inside the workload's namespace
        expect(sh('ip', ['-n', w.netnsName!, '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).toContain(
          `${w.podIp}/24`,
        );
        // the workload's port is open inside its namespace only
        expect(sh('nsenter', [`--net=${w.netns}`, 'ss', '-Htln'])).toContain(`${w.podIp}:${w.port}`);
      }
      expect(runnersOf(sid)).toHaveLength(9);

      const lbV2 = pods.find((w) => w.name === 'http-lb-v2')!;
      const proxy = pods.find((w) => w.name === 'proxy-access-control')!;
      const vs = (await sb.platform.get({
        apiVersion: 'networking.istio.io/v1beta1',
        kind: 'VirtualService',
        namespace: 'default',
        name: 'http-lb',
      }))!;
      await sb.platform.patch(
        {
          apiVersion: 'networking.istio.io/v1beta1',
          kind: 'VirtualService',
          namespace: 'default',
          name: 'http-lb',
        },
        { spec: { http: [{ route: [{ destination: { host: 'http-lb', subset: 'v2' } }] }] } },
        { resourceVersion: vs.metadata.resourceVersion },
      );
      const before = { lb: packets(lbV2.hostVeth!), proxy: packets(proxy.hostVeth!) };
      const versions = () =>
        scrape(
          sb.urls.metrics,
          'istio_requests_total',
          { reporter: 'destination', destination_service_name: 'http-lb' },
          'destination_version',
        );
      const v0 = await versions();
      const { codes, bodies } = await sendRequests(sb.urls.ingress + '/netns', 60, { concurrency: 4 });
      expect(codes).toEqual({ 200: 60 });
      expect(Object.fromEntries(bodies)).toEqual({
        'clover-server1': 20,
        'clover-server2': 20,
        'clover-server3': 20,
      });
      expect(diff(await versions(), v0)).toEqual({ v2: 60 });
      // the hops crossed the host-side veths of the pods they went through
      expect(packets(lbV2.hostVeth!)).toBeGreaterThan(before.lb + 60);
      expect(packets(proxy.hostVeth!)).toBeGreaterThan(before.proxy + 60);
      // a connection reset in a pod's namespace reaches the caller as a reset (503 UC at the proxy)
      await sb.setFault('http-lb', 'v2', { resetRate: 1 });
      expect((await sendRequests(sb.urls.ingress + '/', 5)).codes).toEqual({ 503: 5 });
      const flags = await scrape(
        sb.urls.metrics,
        'istio_requests_total',
        { reporter: 'source', source_workload: 'proxy-access-control', response_code: '503' },
        'response_flags',
      );
      expect(flags.UC).toBeGreaterThanOrEqual(5);

      await sb.stop();
      stopped = true;
      expect(namespacesOf(sid)).toEqual([]);
      expect(linksOf(sid)).toEqual([]);
      expect(runnersOf(sid)).toEqual([]);
    } finally {
      if (!stopped) await sb.stop();
    }
  });

  it('cleans what a failed start created', async () => {
    const before = sh('ip', ['-o', 'link', 'show'])
      .split('\n')
      .filter((l) => l.includes('ccd-br-')).length;
    // Redis is unreachable: the start fails after the bridge was made
    await expect(startSandbox({ netns: true, redisUrl: 'redis://127.0.0.1:1' })).rejects.toThrow(/Redis/);
    expect(
      sh('ip', ['-o', 'link', 'show'])
        .split('\n')
        .filter((l) => l.includes('ccd-br-')).length,
    ).toBe(before);
  });

  it('records the netns layout in the state file and status, and `down` removes it after a crash (SIGKILL)', async () => {
    const dir = join(tmp, 'state');
    const up = await runCli(['sandbox', 'up', '--detach', '--netns', '--state-dir', dir, '-o', 'json'], {
      timeoutMs: 60_000,
    });
    expect(up.code).toBe(0);
    const state = JSON.parse(readFileSync(join(dir, 'sandbox.json'), 'utf8'));
    const lb = state.workloads.find((w: { name: string }) => w.name === 'http-lb-v2');
    expect(lb).toMatchObject({
      name: 'http-lb-v2',
      version: 'v2',
      service: 'http-lb',
      port: 9180,
      netns: expect.stringMatching(/^\/var\/run\/netns\/ccd-/),
      hostVeth: expect.stringMatching(/^ccd-/),
    });
    const status = JSON.parse((await runCli(['sandbox', 'status', '--state-dir', dir, '-o', 'json'])).stdout);
    expect(status.workloads.find((w: { name: string }) => w.name === 'http-lb-v2')).toMatchObject({
      netns: lb.netns,
      hostVeth: lb.hostVeth,
      podIp: lb.podIp,
    });
    expect((await sendRequests(JSON.parse(up.stdout).ingress + '/', 5)).codes).toEqual({ 200: 5 });
    const sid = /ccd-(\w{4})-/.exec(lb.netnsName)![1];

    process.kill(state.pid, 'SIGKILL');
    await waitFor('the sandbox process to die', async () => !existsSync(`/proc/${state.pid}`));
    const down = await runCli(['sandbox', 'down', '--state-dir', dir]);
    expect(down.code).toBe(0);
    expect(namespacesOf(sid)).toEqual([]);
    expect(linksOf(sid)).toEqual([]);
    // runners exit when their parent's pipe closes
    const deadline = Date.now() + 5000;
    while (runnersOf(sid).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(runnersOf(sid)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });
});
