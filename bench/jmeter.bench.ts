/**
 * Load module figures: JTL parse speed and memory, builtin engine rate vs the raw libraries on the same local
 * server, and the wall-time overhead of running JMeter through clover-cd. The JTL parse runs in a child
 * process (this file with `parse-jtl <file>`) that loads only the parser, so its peak RSS is the parser's
 * own, not the load libraries' this process imports for the other figures.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.argv[2] === 'parse-jtl') {
  const { analyzeJtl } = await import('../src/jmeter/jtl.js');
  (globalThis as { gc?: () => void }).gc?.();
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t = performance.now();
  const a = await analyzeJtl(process.argv[3]);
  const parseS = (performance.now() - t) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  process.stdout.write(
    JSON.stringify({ parseS, rows: a.rows, peakMb: peak / 2 ** 20, startMb: rssBefore / 2 ** 20 }) + '\n',
  );
  process.exit(0);
}

const autocannon = (await import('autocannon')).default;
const { Agent } = await import('undici');
const { findJMeter, JTL_COLUMNS, loadPlan, renderJmx, runLoad } = await import('../src/jmeter/index.js');
const { SAVE_PROPERTIES } = await import('../src/jmeter/jmeter-runner.js');

const dir = mkdtempSync(join(tmpdir(), 'jmeter-bench-'));
const line = (name: string, value: string, target: string, ok: boolean) =>
  console.log(`${name.padEnd(44)} ${value.padEnd(26)} target ${target}  ${ok ? 'OK' : 'MISSED'}`);

// 1. JTL parse of 1,000,000 rows
const big = join(dir, 'big.jtl');
await (async () => {
  const w = createWriteStream(big);
  w.write(JTL_COLUMNS.join(',') + '\n');
  const t0 = 1_700_000_000_000;
  let buf = '';
  for (let i = 0; i < 1_000_000; i++) {
    const e = (i * 7919) % 500;
    buf += `${t0 + i},${e},url${i % 3},${i % 50 ? 200 : 500},OK,ThreadGroup 1-${i % 20},text,${i % 50 ? 'true' : 'false'},,843,120,20,20,http://127.0.0.1:8080/a,${e},0,0,chrome\n`;
    if (buf.length > 1 << 20) {
      if (!w.write(buf)) await new Promise<void>((r) => w.once('drain', () => r()));
      buf = '';
    }
  }
  await new Promise<void>((resolve) => w.end(buf, () => resolve()));
})();
{
  const child = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), 'parse-jtl', big],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (child.status !== 0) throw new Error(`the JTL parse child exited ${child.status}`);
  const r = JSON.parse(child.stdout.trim().split('\n').pop()!) as {
    parseS: number;
    rows: number;
    peakMb: number;
    startMb: number;
  };
  line('JTL parse, 1,000,000 rows', `${r.parseS.toFixed(2)} s (${r.rows} rows)`, '<= 3 s', r.parseS <= 3);
  line(
    'JTL parse peak RSS (parser process)',
    `${r.peakMb.toFixed(0)} MB (${r.startMb.toFixed(0)} MB at start)`,
    '<= 150 MB',
    r.peakMb <= 150,
  );
}

// 2. builtin engine vs raw undici and raw autocannon, same server, same connections and request count
const server = createServer((_req, res) => res.end('hello'));
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
const CONNS = 10;
const N = 20_000;
const plan = loadPlan({
  load_spec: { num_threads: CONNS, loops: N / CONNS },
  url_list: [{ name: 'b', url: `${origin}/b`, 'user-agent': 'bench' }],
});

async function rawUndici(): Promise<number> {
  const agent = new Agent({ connections: CONNS, pipelining: 1 });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONNS }, async () => {
      for (let i = 0; i < N / CONNS; i++) {
        const r = await agent.request({
          origin,
          path: '/b',
          method: 'GET',
          headers: { 'user-agent': 'bench' },
        });
        for await (const _ of r.body as AsyncIterable<Buffer>) void _;
      }
    }),
  );
  const rate = N / ((performance.now() - t0) / 1000);
  await agent.close();
  return rate;
}
async function rawAutocannon(): Promise<number> {
  // Called with `amount` (a fixed request count), which the shared declaration in bench/ does not list.
  const run = autocannon as unknown as (
    o: object,
  ) => Promise<{ requests: { total: number }; duration: number }>;
  const res = await run({
    url: `${origin}/b`,
    connections: CONNS,
    amount: N,
    headers: { 'user-agent': 'bench' },
  });
  return res.requests.total / res.duration;
}
async function builtin(): Promise<number> {
  const r = await runLoad(plan, { engine: 'builtin', resultsFile: join(dir, `builtin-${Date.now()}.jtl`) });
  return r.summary.total.count / ((r.endedAt - r.startedAt) / 1000);
}
await rawUndici(); // warm-up
const best = async (f: () => Promise<number>) => Math.max(await f(), await f());
const undiciRate = await best(rawUndici);
const autocannonRate = await best(rawAutocannon);
const builtinRate = await best(builtin);
line('builtin engine (writes a JTL row per sample)', `${builtinRate.toFixed(0)} req/s`, '-', true);
line(
  'builtin / raw undici (the library it runs on)',
  `${(builtinRate / undiciRate).toFixed(2)} (${undiciRate.toFixed(0)} req/s)`,
  '>= 0.8',
  builtinRate / undiciRate >= 0.8,
);
line(
  'builtin / raw autocannon',
  `${(builtinRate / autocannonRate).toFixed(2)} (${autocannonRate.toFixed(0)} req/s)`,
  '>= 0.8',
  builtinRate / autocannonRate >= 0.8,
);

// 3. JMeter wall time, direct vs through clover-cd, same plan
const jm = findJMeter();
if (!jm) console.log('JMeter not installed: skipping the JMeter overhead figure');
else {
  const jplan = loadPlan({
    load_spec: { num_threads: 5, loops: 200, ramp_time: 0 },
    url_list: [{ name: 'j', url: `${origin}/j`, 'user-agent': 'bench' }],
  });
  const jmx = join(dir, 'direct.jmx');
  writeFileSync(jmx, renderJmx(jplan));
  // Asynchronous spawn: the target server lives in this process and must keep answering.
  const direct = async () => {
    const t0 = performance.now();
    const args = [
      ...jm.baseArgs,
      '-n',
      '-t',
      jmx,
      '-l',
      join(dir, `direct-${Date.now()}.jtl`),
      '-j',
      join(dir, 'direct.log'),
      ...Object.entries(SAVE_PROPERTIES).map(([k, v]) => `-J${k}=${v}`),
    ];
    await new Promise((resolve) => spawn(jm.command, args, { stdio: 'ignore' }).on('close', resolve));
    return (performance.now() - t0) / 1000;
  };
  const viaClover = async () => {
    const t0 = performance.now();
    await runLoad(jplan, { engine: 'jmeter', resultsFile: join(dir, `clover-${Date.now()}.jtl`) });
    return (performance.now() - t0) / 1000;
  };
  // alternate to spread machine noise; keep the best of two each
  const d = Math.min(await direct(), (await viaClover()) && (await direct()));
  const c = Math.min(await viaClover(), await viaClover());
  line('JMeter 1000 samples, direct', `${d.toFixed(2)} s`, '-', true);
  line(
    'JMeter 1000 samples, through clover-cd',
    `${c.toFixed(2)} s (+${(((c - d) / d) * 100).toFixed(1)}%)`,
    '<= +10%',
    (c - d) / d <= 0.1,
  );
}
server.close();
