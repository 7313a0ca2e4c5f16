/**
 * `npx tsx bench/conservation-windows.ts`: healthy sandbox windows with untagged user traffic crossing both
 * edges, each judged by `clover-cd gate` with the direct scrape (a real CLI process, as a user runs it). The
 * conservation rule alone; no load, so every request is user traffic that started before or ends after the
 * window. Prints each window's root spans, first-hop count and allowance, and the pass count.
 *
 * CONS_WINDOWS (default 20) windows of CONS_WINDOW (default 10s), user traffic at CONS_RATE req/s (default
 * 100). CONS_BUSY=1 keeps both cores busy for the run (two shell loops, stopped at the end).
 * Exit 1 if a window is not a pass.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as yaml from 'js-yaml';
import { startSandbox } from '../src/sandbox/index.js';
import type { ReleaseSpec } from '../src/spec/types.js';
import { setTraffic } from '../src/stages/index.js';

const WINDOWS = Number(process.env.CONS_WINDOWS ?? 20);
const WINDOW = process.env.CONS_WINDOW ?? '10s';
const RATE = Number(process.env.CONS_RATE ?? 100);
const BUSY = process.env.CONS_BUSY === '1';
const BIN = fileURLToPath(new URL('../bin/clover-cd.js', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'conservation-windows-'));
const sandbox = await startSandbox({ stateDir: join(dir, 'sandbox') });
const busy: ChildProcess[] = [];
let running = true;
let senders: Array<Promise<void>> = [];
try {
  const spec = {
    apiVersion: 'clover-cd/v1',
    kind: 'Release',
    metadata: { name: 'http-lb-canary' },
    application: 'sdc',
    service: { name: 'http-lb', namespace: 'default', port: 9180, stable: 'v1', candidate: 'v2' },
    strategy: { canary: { steps: [50], window: WINDOW } },
    gate: {
      metrics: { source: 'scrape', targets: [sandbox.urls.metrics] },
      tracing: { url: sandbox.urls.jaeger },
      rules: [{ conservation: { hops: ['proxy-access-control', 'http-lb'], tolerance: 0 } }],
    },
  };
  const file = join(dir, 'release.yaml');
  writeFileSync(file, yaml.dump(spec));
  await setTraffic(sandbox.platform, { ...spec, gate: undefined } as unknown as ReleaseSpec, { weight: 50 });
  if (BUSY)
    for (let i = 0; i < 2; i++)
      busy.push(spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore', detached: false }));

  // Untagged user traffic, paced at RATE a second by four senders, until the last window is judged.
  let sent = 0;
  const t0 = Date.now();
  senders = Array.from({ length: 4 }, async () => {
    while (running) {
      const due = t0 + (sent++ * 1000) / RATE;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await fetch(`${sandbox.urls.ingress}/clover/user`)
        .then((r) => r.arrayBuffer())
        .catch(() => undefined);
    }
  });
  await new Promise((r) => setTimeout(r, 2000)); // traffic is flowing before the first window opens

  let passed = 0;
  for (let i = 1; i <= WINDOWS; i++) {
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [BIN, 'gate', file, '--window', WINDOW, '--evidence-dir', join(dir, 'evidence'), '-o', 'json'],
        { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
    let line = `window ${String(i).padStart(2)}: exit ${out.code}`;
    try {
      const r = (JSON.parse(out.stdout) as { verdict: { results: Array<Record<string, string>> } }).verdict
        .results[0];
      line += ` ${r.outcome} | ${r.observed} | ${r.reason}`;
      if (r.outcome === 'pass' && out.code === 0) passed++;
    } catch {
      line += ` (no verdict) ${out.stderr.trim().split('\n').slice(-2).join(' / ')}`;
    }
    console.log(line);
  }
  console.log(
    `${passed} of ${WINDOWS} windows passed conservation (${WINDOW} each, ~${RATE} req/s untagged, ${BUSY ? 'both cores busy' : 'quiet machine'})`,
  );
  process.exitCode = passed === WINDOWS ? 0 : 1;
} finally {
  running = false;
  for (const b of busy) b.kill('SIGKILL');
  await Promise.all(senders);
  await sandbox.stop();
  rmSync(dir, { recursive: true, force: true });
}
