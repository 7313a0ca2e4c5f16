/**
 * Network-namespace lab for the clovisor suites: a "node" namespace (host side of every veth, and the client)
 * and one namespace per workload, joined by veth pairs; small node HTTP servers whose fault knob resets a share
 * of connections. Everything is created under a unique prefix and removed by destroy().
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { waitFor } from './helpers/ports.js';

export interface LabWorkload {
  name: string;
  version: string;
  netns: string;
  hostVeth: string;
  ip: string;
}

export interface Lab {
  host: string;
  workloads: LabWorkload[];
  startServer(w: LabWorkload, opts?: { resetEvery?: number }): Promise<void>;
  /** A server in the node namespace (a destination for the workloads' outbound connections), on all its addresses. */
  startNodeServer(port: number): Promise<void>;
  /** Sends `count` requests from the node namespace, one connection each, retrying a reset up to 3 times (as Envoy does). */
  load(w: LabWorkload, count: number, opts?: { headers?: Record<string, string> }): Promise<LoadResult>;
  /** Sends `count` requests from inside a workload's namespace to `url` (its outbound connections). */
  loadFrom(w: LabWorkload, url: string, count: number): Promise<LoadResult>;
  destroy(): Promise<void>;
}

export interface LoadResult {
  sent: number;
  ok: number;
  http5xx: number;
  failed: number;
  resetsSeen: number;
}

const sh = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** Why the eBPF suites cannot run here, or undefined when they can. */
export function ebpfUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync('build/clovisor/clovisor.bpf.o'))
    return 'build/clovisor/clovisor.bpf.o is missing (clang absent at setup; run bash scripts/setup.d/clovisor.sh)';
  try {
    sh('bpftool', ['version']);
    sh('ip', ['-V']);
    sh('tc', ['-V']);
  } catch {
    return 'bpftool, ip or tc is not installed';
  }
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'kernel without BTF';
  return undefined;
}

const SERVER = `
const http = require('node:http');
let n = 0;
const every = Number(process.env.RESET_EVERY || 0);
http.createServer((req, res) => {
  n++;
  if (every && n % every === 0) { req.socket.resetAndDestroy(); return; }
  res.setHeader('connection', 'close');
  res.end('ok ' + process.env.VERSION + '\\n');
}).listen(Number(process.env.PORT || 8080), '0.0.0.0', () => console.log('ready'));
`;

const CLIENT = `
const http = require('node:http');
const [url, count, headers] = [process.argv[1], Number(process.argv[2]), JSON.parse(process.argv[3] || '{}')];
const one = () => new Promise((resolve) => {
  const req = http.get(url, { agent: false, headers }, (res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode })); });
  req.on('error', (e) => resolve({ error: e.code }));
  req.setTimeout(3000, () => req.destroy(new Error('timeout')));
});
(async () => {
  const out = { sent: 0, ok: 0, http5xx: 0, failed: 0, resetsSeen: 0 };
  for (let i = 0; i < count; i++) {
    out.sent++;
    let r;
    for (let attempt = 0; attempt < 4; attempt++) {
      r = await one();
      if (!r.error) break;
      out.resetsSeen++;
    }
    if (r.error) out.failed++; else if (r.status >= 500) out.http5xx++; else out.ok++;
  }
  console.log(JSON.stringify(out));
})();
`;

export async function createLab(names: Array<{ name: string; version: string }>): Promise<Lab> {
  const id = (process.pid % 200) + 20;
  const tag = `clv${process.pid % 10000}`;
  const host = `${tag}-node`;
  const procs: ChildProcess[] = [];
  const workloads: LabWorkload[] = [];
  sh('ip', ['netns', 'add', host]);
  sh('ip', ['-n', host, 'link', 'set', 'lo', 'up']);
  names.forEach((n, i) => {
    const ns = `${tag}-${n.version}`;
    const hv = `${tag}h${i}`;
    const pv = `${tag}p${i}`;
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['link', 'add', hv, 'netns', host, 'type', 'veth', 'peer', 'name', pv, 'netns', ns]);
    sh('ip', ['-n', ns, 'link', 'set', pv, 'name', 'eth0']);
    const net = `10.${id}.${i + 1}`;
    sh('ip', ['-n', host, 'addr', 'add', `${net}.1/24`, 'dev', hv]);
    sh('ip', ['-n', ns, 'addr', 'add', `${net}.2/24`, 'dev', 'eth0']);
    for (const [n2, d] of [
      [host, hv],
      [ns, 'eth0'],
      [ns, 'lo'],
    ])
      sh('ip', ['-n', n2, 'link', 'set', d, 'up']);
    workloads.push({
      name: n.name,
      version: n.version,
      netns: `/var/run/netns/${ns}`,
      hostVeth: hv,
      ip: `${net}.2`,
    });
  });
  const nsName = (p: string) => p.split('/').pop()!;
  async function startIn(ns: string, env: Record<string, string>, what: string): Promise<void> {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    procs.push(p);
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    await waitFor(what, async () => out.includes('ready'), 10_000);
  }
  return {
    host,
    workloads,
    startServer: (w, opts = {}) =>
      startIn(
        nsName(w.netns),
        { RESET_EVERY: String(opts.resetEvery ?? 0), VERSION: w.version },
        `server of ${w.name} ${w.version}`,
      ),
    startNodeServer: (port) =>
      startIn(host, { PORT: String(port), VERSION: 'node' }, `node server on ${port}`),
    async load(w, count, opts = {}) {
      const out = sh('ip', [
        'netns',
        'exec',
        host,
        process.execPath,
        '-e',
        CLIENT,
        `http://${w.ip}:8080/`,
        String(count),
        JSON.stringify(opts.headers ?? {}),
      ]);
      return JSON.parse(out.trim().split('\n').pop()!);
    },
    async loadFrom(w, url, count) {
      const out = sh('ip', [
        'netns',
        'exec',
        nsName(w.netns),
        process.execPath,
        '-e',
        CLIENT,
        url,
        String(count),
      ]);
      return JSON.parse(out.trim().split('\n').pop()!);
    },
    async destroy() {
      for (const p of procs) {
        if (p.exitCode === null) {
          const gone = new Promise((r) => p.once('exit', r));
          p.kill('SIGKILL');
          await gone;
        }
      }
      for (const w of workloads) execFileSync('ip', ['netns', 'del', nsName(w.netns)], { stdio: 'ignore' });
      execFileSync('ip', ['netns', 'del', host], { stdio: 'ignore' });
    },
  };
}
