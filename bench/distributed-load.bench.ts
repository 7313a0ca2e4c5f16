/**
 * When to switch to `load.engines`: the in-process ceiling (requests/s the builtin engine and local JMeter get
 * from one process on this machine) beside what a distributed engine costs — the time until it is ready (a
 * JVM start), the time to stop it, and the rate one and two local engines reach through the controller. The
 * target is a plain HTTP server in a process of its own, so the figures are the load generators', on the same
 * cores. Engines are the sandbox's (`clover-cd load server` on loopback, as `load.engines` starts them).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findJMeter, runLoad, type LoadPlan } from '../src/jmeter/index.js';
import { startLocalEngines } from '../src/sandbox/load-engines.js';

const SECONDS = 5;
const THREADS = 16;
const dir = mkdtempSync(join(tmpdir(), 'distributed-bench-'));

const server = spawn(
  process.execPath,
  [
    '-e',
    `const s = require('node:http').createServer((q, r) => r.end('ok'));
     s.keepAliveTimeout = 60000;
     s.listen(0, '127.0.0.1', () => console.log(s.address().port));`,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const port = await new Promise<number>((resolve) => server.stdout!.once('data', (d) => resolve(Number(d))));
const plan: LoadPlan = {
  threads: THREADS,
  loops: -1,
  rampS: 0,
  durationS: SECONDS,
  requests: [{ label: 'root', url: `http://127.0.0.1:${port}/`, method: 'GET', headers: {} }],
  criteria: [],
};
const line = (name: string, value: string) => console.log(`${name.padEnd(52)} ${value}`);
const rate = (count: number, s: number) => `${Math.round(count / s).toLocaleString('en')} req/s`;

try {
  const builtin = await runLoad(plan, { engine: 'builtin', resultsFile: join(dir, 'builtin.jtl') });
  line(`in-process ceiling, builtin engine (${THREADS} threads)`, rate(builtin.summary.total.count, SECONDS));
  if (!findJMeter()) {
    console.log('JMeter is not installed: the JMeter and distributed figures are skipped');
  } else {
    const local = await runLoad(plan, { engine: 'jmeter', resultsFile: join(dir, 'local.jtl') });
    line(`in-process ceiling, local JMeter (${THREADS} threads)`, rate(local.summary.total.count, SECONDS));
    for (const count of [1, 2]) {
      const t0 = performance.now();
      const engines = await startLocalEngines(join(dir, `state-${count}`), {
        count,
        release: 'bench',
        step: 0,
      });
      const readyS = (performance.now() - t0) / 1000;
      const t1 = performance.now();
      const r = await runLoad(plan, {
        engine: 'jmeter',
        remote: engines.hosts,
        resultsFile: join(dir, `distributed-${count}.jtl`),
      });
      const runS = (performance.now() - t1) / 1000;
      const t2 = performance.now();
      await engines.stop();
      const stopS = (performance.now() - t2) / 1000;
      line(
        `${count} engine(s): ready after`,
        `${readyS.toFixed(1)} s (${(readyS / count).toFixed(1)} s per engine)`,
      );
      line(
        `${count} engine(s): rate through the controller (${count} x ${THREADS} threads)`,
        `${rate(r.summary.total.count, SECONDS)}; run ${runS.toFixed(1)} s for a ${SECONDS} s plan`,
      );
      line(`${count} engine(s): stopped after`, `${(stopS * 1000).toFixed(0)} ms`);
    }
    console.log(
      'On one machine the engines share its cores: engines pay off where each runs on its own (cluster nodes),\n' +
        "once the window needs more than the in-process ceiling; each step then costs the engines' start.",
    );
  }
} finally {
  server.kill();
}
