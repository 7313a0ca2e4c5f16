/**
 * CLI start-up: what a Jenkins job pays per stage. Measures, in the same run and interleaved round by round
 * (so machine load hits every command alike), `node -e 0`, `clover-cd --version`, `clover-cd --help`,
 * `clover-cd gate --help` and `clover-cd gate --replay` of the recorded demo bundle, and prints the median
 * of warm runs with the ratio to bare node. Targets: --version ≤ 150 ms, any --help ≤ 250 ms,
 * gate --replay ≤ 0.5 s. Runs the compiled dist/ (built first when stale, as bin/clover-cd.js would
 * otherwise fall back to tsx).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = `${root}bin/clover-cd.js`;
const bundle = `${root}examples/evidence/http-lb-canary-10pct-pass.json`;

const build = spawnSync(process.execPath, [`${root}scripts/build.mjs`], {
  stdio: ['ignore', 'ignore', 'inherit'],
  timeout: 300_000,
});
if (build.status !== 0) {
  console.error('startup bench: npm run build failed');
  process.exit(1);
}

interface Case {
  name: string;
  args: string[];
  targetMs?: number;
  exit: number;
}
const cases: Case[] = [
  { name: 'node -e 0', args: ['-e', '0'], exit: 0 },
  { name: 'clover-cd --version', args: [bin, '--version'], targetMs: 150, exit: 0 },
  { name: 'clover-cd --help', args: [bin, '--help'], targetMs: 250, exit: 0 },
  { name: 'clover-cd gate --help', args: [bin, 'gate', '--help'], targetMs: 250, exit: 0 },
  {
    name: 'clover-cd pipeline render --help',
    args: [bin, 'pipeline', 'render', '--help'],
    targetMs: 250,
    exit: 0,
  },
  {
    name: 'clover-cd gate --replay <demo bundle>',
    args: [bin, 'gate', '--replay', bundle],
    targetMs: 500,
    exit: 0,
  },
];

const once = (c: Case): number => {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, c.args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  const ms = performance.now() - t0;
  if (r.status !== c.exit)
    throw new Error(`${c.name}: exit ${r.status}, expected ${c.exit}: ${r.stderr.toString().slice(0, 500)}`);
  return ms;
};

const ROUNDS = 9;
const times = new Map<Case, number[]>(cases.map((c) => [c, []]));
for (const c of cases) once(c); // warm the file cache
for (let i = 0; i < ROUNDS; i++) for (const c of cases) times.get(c)!.push(once(c));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const nodeMs = median(times.get(cases[0])!);
console.log(`median of ${ROUNDS} warm runs each, interleaved`);
for (const c of cases) {
  const ms = median(times.get(c)!);
  const ratio = c === cases[0] ? '' : ` (${(ms / nodeMs).toFixed(1)}× node)`;
  const verdict =
    c.targetMs === undefined ? '' : `target <= ${c.targetMs} ms  ${ms <= c.targetMs ? 'OK' : 'MISSED'}`;
  console.log(`${c.name.padEnd(40)} ${`${ms.toFixed(0)} ms${ratio}`.padEnd(22)} ${verdict}`);
}
