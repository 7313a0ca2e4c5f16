import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Agent } from 'node:http';
import { promisify } from 'node:util';
import { InfrastructureError } from '../util/errors.js';

/**
 * --netns mode: each workload gets its own network namespace `ccd-<sid>-<workload>` with a veth pair whose host
 * side `ccd-<sid>-<nn>` is enslaved to the bridge `ccd-br-<sid>` (10.<a>.<b>.1/24), and whose pod side is `eth0`
 * with the pod IP 10.<a>.<b>.<10+n>/24 — the layout of a kubenet node, so host-side veths look like pod veths.
 * One runner process per namespace (`nsenter --net=<path> node -e RUNNER`) is the pod's network presence:
 * - inbound: it listens on <podIP>:<service port> and relays each connection to the workload's sidecar in the
 *   parent (listening on the bridge address), like Istio's inbound capture;
 * - outbound: it listens on <podIP>:15001; the parent's sidecar opens its hops through it (first line
 *   `<ip>:<port>`), so a hop A → B is a real TCP connection from A's namespace to B's pod IP, like Envoy's
 *   outbound capture on 15001. A reset on one side is passed on as a reset on the other.
 * Runners exit when the parent's pipe closes (a crashed parent leaves no runner behind).
 */
const run = promisify(execFile);

export const EGRESS_PORT = 15001;

export interface PodNetwork {
  workload: string;
  netnsName: string;
  netns: string;
  hostVeth: string;
  podIp: string;
  port: number;
}

const RUNNER = `
const net = require('node:net');
const cfg = JSON.parse(process.argv[1]);
const join = (a, b) => {
  a.on('error', () => b.destroyed || b.resetAndDestroy());
  b.on('error', () => a.destroyed || a.resetAndDestroy());
  a.pipe(b); b.pipe(a);
};
const inbound = net.createServer((c) => join(c, net.connect(cfg.sidecarPort, cfg.sidecarHost)));
const egress = net.createServer((c) => {
  let buf = Buffer.alloc(0);
  const onData = (d) => {
    buf = Buffer.concat([buf, d]);
    const nl = buf.indexOf(10);
    if (nl < 0) return;
    c.off('data', onData);
    c.pause();
    const [host, port] = buf.subarray(0, nl).toString().split(':');
    const up = net.connect(Number(port), host);
    const rest = buf.subarray(nl + 1);
    if (rest.length) up.write(rest);
    join(c, up);
    c.resume();
  };
  c.on('data', onData);
  c.on('error', () => undefined);
});
let ready = 0;
const up = () => ++ready === 2 && process.stdout.write('ready\\n');
inbound.listen(cfg.port, cfg.podIp, up);
egress.listen(cfg.egressPort, cfg.podIp, up);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

const ip = (args: string[]) =>
  run('ip', args).catch((err: Error & { stderr?: string }) => {
    throw new InfrastructureError(
      'ip (iproute2)',
      `ip ${args.join(' ')}`,
      (err.stderr || err.message).trim(),
      'that this runs as root and iproute2 is installed',
    );
  });

/** A free 10.<a>.<b>.0/24: the first one no address or route on this host already uses. */
async function freeSubnet(): Promise<string> {
  const { stdout } = await run('ip', ['-4', 'route', 'show', 'table', 'all']);
  for (let i = 0; i < 200; i++) {
    const a = 200 + Math.floor(Math.random() * 50);
    const b = Math.floor(Math.random() * 256);
    const prefix = `10.${a}.${b}.`;
    if (!stdout.includes(prefix) && !stdout.includes(`10.${a}.0.0/16`)) return prefix;
  }
  throw new InfrastructureError(
    'network namespaces',
    'ip route',
    'no free 10.x.y.0/24 found',
    'the routes on this host',
  );
}

/** The namespaces, veths and bridge of one sandbox; everything it creates is recorded so teardown removes it all. */
export class NetnsLayout {
  readonly sid = randomBytes(2).toString('hex');
  readonly bridge = `ccd-br-${this.sid}`;
  prefix = '';
  readonly pods = new Map<string, PodNetwork & { runner?: ChildProcess }>();
  private next = 10;
  private links = 0;
  private readonly agents = new Map<string, Agent>();

  get gateway(): string {
    return `${this.prefix}1`;
  }

  /** What `down` needs to clean up after a crashed sandbox. */
  created(): string[] {
    // Host veths first: deleting one end removes the pair at once, while a deleted namespace (and the veth in it)
    // is freed by the kernel later, when its last user has gone.
    const pods = [...this.pods.values()];
    return [
      ...pods.map((p) => `link:${p.hostVeth}`),
      ...pods.map((p) => `netns:${p.netnsName}`),
      `link:${this.bridge}`,
    ];
  }

  async createBridge(): Promise<void> {
    this.prefix = await freeSubnet();
    await ip(['link', 'add', this.bridge, 'type', 'bridge']);
    await ip(['addr', 'add', `${this.gateway}/24`, 'dev', this.bridge]);
    await ip(['link', 'set', this.bridge, 'up']);
  }

  /** Namespace + veth pair + addresses for a workload; the runner is started by `startRunner` once the sidecar listens. */
  async addPod(workload: string, port: number): Promise<PodNetwork> {
    const n = this.next++;
    if (n > 250)
      throw new InfrastructureError(
        'network namespaces',
        this.bridge,
        'no pod address left in the /24',
        'fewer workloads',
      );
    const netnsName = `ccd-${this.sid}-${workload}`;
    const hostVeth = `ccd-${this.sid}-${String(this.links++).padStart(2, '0')}`;
    const pod: PodNetwork = {
      workload,
      netnsName,
      netns: `/var/run/netns/${netnsName}`,
      hostVeth,
      podIp: `${this.prefix}${n}`,
      port,
    };
    this.pods.set(workload, pod);
    await ip(['netns', 'add', netnsName]);
    await ip(['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netnsName]);
    await ip(['link', 'set', hostVeth, 'master', this.bridge, 'up']);
    await ip(['-n', netnsName, 'addr', 'add', `${pod.podIp}/24`, 'dev', 'eth0']);
    await ip(['-n', netnsName, 'link', 'set', 'lo', 'up']);
    await ip(['-n', netnsName, 'link', 'set', 'eth0', 'up']);
    await ip(['-n', netnsName, 'route', 'add', 'default', 'via', this.gateway]);
    return pod;
  }

  async startRunner(workload: string, sidecarPort: number): Promise<void> {
    const pod = this.pods.get(workload)!;
    const cfg = {
      netns: pod.netnsName,
      podIp: pod.podIp,
      port: pod.port,
      egressPort: EGRESS_PORT,
      sidecarHost: this.gateway,
      sidecarPort,
    };
    // nsenter --net= only (not `ip netns exec`, which also remounts /sys in a new mount namespace).
    const child = spawn(
      'nsenter',
      [`--net=${pod.netns}`, '--', process.execPath, '-e', RUNNER, JSON.stringify(cfg)],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    (this.pods.get(workload) as { runner?: ChildProcess }).runner = child;
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new InfrastructureError(
              'sandbox --netns',
              pod.netns,
              `runner for ${workload} not ready in 20 s ${err}`,
              'the host load',
            ),
          ),
        20_000,
      );
      child.stdout!.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(
          new InfrastructureError(
            'sandbox --netns',
            pod.netns,
            `runner for ${workload} exited ${code}: ${err.trim()}`,
            'that nsenter and node run as root',
          ),
        );
      });
    });
  }

  /** Keep-alive agent whose connections leave from `workload`'s namespace, through its runner's outbound port. */
  egressAgent(workload: string): Agent {
    let agent = this.agents.get(workload);
    if (!agent) {
      const pod = this.pods.get(workload)!;
      agent = new Agent({ keepAlive: true, maxSockets: 256, scheduling: 'lifo' });
      (
        agent as unknown as { createConnection: (o: { host: string; port: number }) => unknown }
      ).createConnection = (o) => {
        const s = connect(EGRESS_PORT, pod.podIp);
        s.write(`${o.host}:${o.port}\n`);
        return s;
      };
      this.agents.set(workload, agent);
    }
    return agent;
  }

  async removePod(workload: string): Promise<void> {
    const pod = this.pods.get(workload);
    if (!pod) return;
    this.pods.delete(workload);
    this.agents.get(workload)?.destroy();
    this.agents.delete(workload);
    await stopRunner(pod.runner);
    // The pair goes with its host end now; the namespace's own teardown is asynchronous in the kernel.
    await run('ip', ['link', 'del', pod.hostVeth]).catch(() => undefined);
    await run('ip', ['netns', 'del', pod.netnsName]).catch(() => undefined);
  }

  async teardown(): Promise<void> {
    await Promise.all([...this.pods.keys()].map((w) => this.removePod(w)));
    await run('ip', ['link', 'del', this.bridge]).catch(() => undefined);
  }
}

function stopRunner(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin?.end();
    child.kill('SIGTERM');
  });
}

/** Remove what a sandbox recorded (`netns:<name>`, `link:<name>`, or a bare namespace name); missing ones are ignored. */
export async function removeNamespaces(names: string[]): Promise<void> {
  for (const n of names) {
    if (n.startsWith('link:')) await run('ip', ['link', 'del', n.slice(5)]).catch(() => undefined);
    else await run('ip', ['netns', 'del', n.replace(/^netns:/, '')]).catch(() => undefined);
  }
}
