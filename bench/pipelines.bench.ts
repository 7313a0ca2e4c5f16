/**
 * Render + validate time per example spec (target < 50 ms each, warm), and validate throughput on the
 * largest corpus file as a baseline in the same run.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { readRenderInput } from '../src/pipelines/inputs.js';
import { pipelineJson, renderPipeline } from '../src/pipelines/render.js';
import { validatePipelineDocument } from '../src/pipelines/validate.js';
import { loadSpec } from '../src/spec/load.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const TARGET_MS = 50;
const RUNS = 30;
let failed = false;

function time(fn: () => void): { median: number; p95: number } {
  fn(); // warm-up (schema compilation, JIT)
  const t: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const s = performance.now();
    fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return { median: t[Math.floor(RUNS / 2)], p95: t[Math.floor(RUNS * 0.95)] };
}

for (const spec of ['examples/sdc-canary.yaml', 'examples/sdc-bluegreen.yaml', 'examples/sdc-ab.yaml']) {
  let stages = 0;
  const r = time(() => {
    const { pipeline } = renderPipeline(readRenderInput(loadSpec(root + spec)));
    const v = validatePipelineDocument(JSON.parse(pipelineJson(pipeline)));
    if (v.errors) throw new Error(`${spec} fails validation`);
    stages = pipeline.stages.length;
  });
  // Judged on the median: the machine is shared, so p95 mostly measures other processes.
  const ok = r.median < TARGET_MS;
  failed ||= !ok;
  console.log(
    `render+validate ${spec.padEnd(28)} ${String(stages).padStart(2)} stages  median ${r.median.toFixed(2)} ms  p95 ${r.p95.toFixed(2)} ms  (target < ${TARGET_MS} ms) ${ok ? 'ok' : 'SLOW'}`,
  );
}
const corpus = fileURLToPath(
  new URL(
    '../../shared/spinnaker-pipelines/spinnaker__echo__echo-core_src_test_resources_pipelines.json',
    import.meta.url,
  ),
);
try {
  const doc = JSON.parse(readFileSync(corpus, 'utf8'));
  const r = time(() => validatePipelineDocument(doc));
  console.log(
    `baseline: validate Echo fixture (35 configs)          median ${r.median.toFixed(2)} ms  p95 ${r.p95.toFixed(2)} ms`,
  );
} catch {
  console.log('baseline: corpus not available, skipped');
}
// Validation stays linear in the number of stages: a 10,000-stage chain (each stage waiting on the one
// before, every other one reading the previous stage's outputs through SpEL) validates in under 1 s.
{
  const CHAIN = 10_000;
  const CHAIN_TARGET_MS = 1000;
  const stages = Array.from({ length: CHAIN }, (_, i) => ({
    refId: String(i + 1),
    requisiteStageRefIds: i ? [String(i)] : [],
    type: 'wait',
    name: `wait ${i + 1}`,
    waitTime: i % 2 && i > 0 ? `\${#stage('wait ${i}').context.waitTime}` : 1,
  }));
  const doc = { application: 'bench', name: 'chain', spelEvaluator: 'v4', stages };
  const t0 = performance.now();
  const v = validatePipelineDocument(doc);
  const ms = performance.now() - t0;
  const ok = ms < CHAIN_TARGET_MS && v.errors === 0;
  failed ||= !ok;
  console.log(
    `validate a ${CHAIN}-stage chain                      ${ms.toFixed(0)} ms  (target < ${CHAIN_TARGET_MS} ms, ${v.errors} errors) ${ok ? 'ok' : 'SLOW'}`,
  );
}
process.exit(failed ? 1 : 0);
