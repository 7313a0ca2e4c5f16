import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as yaml from 'js-yaml';
import { runCli } from './helpers/cli.js';
import { withQuietSplit } from './helpers/rules.js';

/** An example spec with a short window and the builtin engine, in a folder of its own. */
function quickSpec(example: string): { dir: string; spec: string } {
  const dir = mkdtempSync(join(tmpdir(), `demo-${example}-`));
  const doc = yaml.load(readFileSync(`examples/${example}.yaml`, 'utf8')) as Record<string, any>;
  doc.strategy.canary.window = '3s';
  doc.load = { plan: resolve('examples/sdc-load.yaml'), engine: 'builtin' };
  doc.gate.minSamples = 20;
  doc.gate.rules = withQuietSplit(doc.gate.rules);
  // The window closes as soon as the rules decide; on a busy machine (fewer requests a second) it may take longer.
  doc.gate.maxWindow = '60s';
  const spec = join(dir, 'spec.yaml');
  writeFileSync(spec, yaml.dump(doc));
  return { dir, spec };
}

/** `clover-cd demo` as a newcomer runs it (shorter windows and the builtin engine, so it takes seconds). */
describe('clover-cd demo', () => {
  it('promotes a healthy v2, rolls back a faulty one, prints the table and keeps the evidence', async () => {
    const { dir, spec } = quickSpec('sdc-canary');

    const text = await runCli(['demo', '--spec', spec, '--out', join(dir, 'text')], { timeoutMs: 300_000 });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/scenario\s+weight\s+sent\s+seen at http-lb\s+verdict\s+reasons/);
    expect(text.stdout).toMatch(/ok\s+healthy v2: expected promoted, got promoted/);
    expect(text.stdout).toMatch(/ok\s+faulty v2 \(30% HTTP 500\): expected rolled back, got rolled back/);
    expect(text.stdout).toMatch(/faulty v2 \(30% HTTP 500\)\s+10%\s+\d+\s+v1 \d+, v2 \d+\s+fail\s+errorRate/);

    // Every request sent was seen at http-lb, split between the versions; healthy steps pass, the faulty one fails.
    const rows = [
      ...text.stdout.matchAll(
        /^(healthy v2|faulty v2 \(30% HTTP 500\))\s+(\d+)%\s+(\d+)\s+v1 (\d+), v2 (\d+)\s+(\w+)/gm,
      ),
    ];
    if (rows.length !== 3) throw new Error(`expected 3 table rows in the demo output:\n${text.stdout}`);
    expect(rows.map((m) => [m[1].split(' ')[0], Number(m[2]), m[6]])).toEqual([
      ['healthy', 10, 'pass'],
      ['healthy', 50, 'pass'],
      ['faulty', 10, 'fail'],
    ]);
    for (const m of rows) expect(Number(m[4]) + Number(m[5])).toBe(Number(m[3]));
    const paths = [...text.stdout.matchAll(/^ {2}(\/\S+\.(?:json|jtl))$/gm)].map((m) => m[1]);
    expect(paths.length).toBe(6);
    for (const p of paths) expect(existsSync(p)).toBe(true);
    expect(text.stdout).toMatch(/demo passed in/);
  }, 300_000);

  it('runs the same on a Gateway API HTTPRoute (service.mesh: gateway-api): a healthy v2 promoted, a faulty one rolled back', async () => {
    const { dir, spec } = quickSpec('sdc-canary-gateway-api');
    const r = await runCli(['demo', '--spec', spec, '--out', join(dir, 'out'), '-o', 'json'], {
      timeoutMs: 300_000,
    });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { scenarios: Array<{ outcome?: string; finalWeight?: number }> };
    expect(out.scenarios.map((s) => s.finalWeight)).toEqual([100, 0]);
    expect(r.stderr).toMatch(/Prepare routes for v2: SUCCEEDED/);
  }, 300_000);
});
