/**
 * clovisor overhead and drain rate, on the real kernel (root only; prints why and exits 0 otherwise):
 *  - run_time_ns per event of each program, from the kernel's BPF stats (kernel.bpf_stats_enabled);
 *  - throughput of an HTTP workload at a 3,000 req/s target with both tiers on, as a ratio to both off (target >= 0.95);
 *  - session records drained per second by the reader (perf JSON → attributed records; target >= 50,000/s),
 *    measured on session events the kernel emitted in this run, replayed through the reader's parser.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tracer } from '../src/clovisor/index.js';
import { EventPipeParser } from '../src/clovisor/records.js';
import { createLab, ebpfUnavailableReason } from '../test/clovisor-lab.js';

const reason = ebpfUnavailableReason();
if (reason) {
  console.log(`clovisor bench skipped: ${reason}`);
  process.exit(0);
}

const RATE = 3000;
const SECONDS = 3;
const AUTOCANNON = `
const autocannon = require(process.argv[2]);
autocannon({ url: process.argv[1], connections: 20, overallRate: ${RATE}, duration: ${SECONDS} }, (err, r) => {
  if (err) { console.error(err); process.exit(1); }
  console.log(JSON.stringify({ rps: r.requests.total / ${SECONDS}, errors: r.errors + r.non2xx }));
});
`;

const lab = await createLab([{ name: 'http-lb-v1', version: 'v1' }]);
const [w] = lab.workloads;
const stateDir = mkdtempSync(join(tmpdir(), 'clovisor-bench-'));
const pinRoot = `/sys/fs/bpf/clover-cd-bench-${process.pid}`;
const statsBefore = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
let tracer: Tracer | undefined;
const drive = () => {
  const out = execFileSync('ip', ['netns', 'exec', lab.host, process.execPath, '-e', AUTOCANNON, `http://${w.ip}:8080/`, require_resolve('autocannon')]).toString();
  return JSON.parse(out.trim().split('\n').pop()!) as { rps: number; errors: number };
};
function require_resolve(m: string): string {
  return join(process.cwd(), 'node_modules', m);
}
try {
  await lab.startServer(w);
  drive(); // warm-up
  const off = drive();
  tracer = new Tracer({ pinRoot, stateDir, targets: [{ workload: w.name, version: w.version, namespace: 'default', netns: w.netns, hostVeth: w.hostVeth, hostNetns: `/var/run/netns/${lab.host}`, packetTier: true }] });
  await tracer.start();
  writeFileSync('/proc/sys/kernel/bpf_stats_enabled', '1');
  const on = drive();
  // Connection churn for the socket tier: one connection per request.
  await lab.load(w, 300);
  await tracer.drain();
  const progs = ['tp_inet_sock_set_state', 'tp_tcp_retransmit_skb', 'tp_tcp_send_reset', 'tp_tcp_receive_reset', 'tc_from_pod', 'tc_to_pod'];
  console.log('run_time_ns per event (kernel BPF stats):');
  for (const p of progs) {
    const info = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show', 'pinned', `${pinRoot}/prog/${p}`]).toString()) as { run_time_ns?: number; run_cnt?: number };
    const per = info.run_cnt ? (info.run_time_ns ?? 0) / info.run_cnt : 0;
    console.log(`  ${p.padEnd(24)} ${per.toFixed(0).padStart(6)} ns/event over ${info.run_cnt ?? 0} events`);
  }
  const on2 = drive();

  // Drain rate: the kernel's own session events of this run, as bpftool printed them, replayed through the reader.
  const real = tracer.sessionRecords().length;
  const events: string[] = [];
  const captured = tracer.rawSamplesForBench();
  for (const d of captured) events.push(JSON.stringify({ type: 9, cpu: 0, index: 0, timestamp: 1, data: [...d] }));
  const N = 200_000;
  const text = '[' + Array.from({ length: N }, (_, i) => events[i % events.length]).join(',') + ']';
  const parser = new EventPipeParser();
  const t0 = process.hrtime.bigint();
  const batch: Buffer[] = [];
  for (let off2 = 0; off2 < text.length; off2 += 65536) parser.push(text.slice(off2, off2 + 65536), (d) => batch.push(d), () => undefined);
  const n = tracer.ingest(batch);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await tracer.stop();
  tracer = undefined;
  const off2 = drive();
  // off, on, on, off: the shared machine's drift hits both sides alike.
  const offRps = (off.rps + off2.rps) / 2;
  const onRps = (on.rps + on2.rps) / 2;
  const ratio = onRps / offRps;
  console.log(`throughput at a ${RATE} req/s target (2 runs of ${SECONDS}s each): off ${off.rps.toFixed(0)}/${off2.rps.toFixed(0)} req/s, both tiers on ${on.rps.toFixed(0)}/${on2.rps.toFixed(0)} req/s, ratio ${ratio.toFixed(3)} (target >= 0.95) ${ratio >= 0.95 ? 'OK' : 'BELOW TARGET'}${offRps < RATE * 0.9 ? ` (this machine reached only ${offRps.toFixed(0)} req/s without tracing)` : ''}`);
  console.log(`session records drained: ${(n / secs).toFixed(0)}/s over ${n} records replayed from ${captured.length} kernel events (${real} live records) (target >= 50,000/s) ${n / secs >= 50_000 ? 'OK' : 'BELOW TARGET'}`);
} finally {
  writeFileSync('/proc/sys/kernel/bpf_stats_enabled', statsBefore);
  await tracer?.stop().catch(() => undefined);
  rmSync(pinRoot, { recursive: true, force: true });
  await lab.destroy();
  rmSync(stateDir, { recursive: true, force: true });
}
