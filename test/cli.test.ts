import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';

describe('clover-cd CLI', () => {
  it('prints its version', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('teaches exit codes and examples in --help', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Exit codes:/);
    expect(r.stdout).toMatch(/clover-cd spec validate/);
  });

  it('exits 2 on an unknown command, with the error on stderr', async () => {
    const r = await runCli(['spec', 'frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/unknown command 'frobnicate'/);
  });

  it('validates a spec and prints json on request', async () => {
    const r = await runCli(['spec', 'validate', 'examples/sdc-canary.yaml', '--output', 'json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: true, strategy: 'canary', steps: [10, 50] });
  });

  it('exits 2 for an invalid spec and names file and field on stderr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-'));
    const r0 = await runCli(['spec', 'init', '-f', join(dir, 'r.yaml')]);
    expect(r0.code).toBe(0);
    const text = readFileSync(join(dir, 'r.yaml'), 'utf8').replace('steps: [10, 25, 50]', 'steps: [10, 25, 250]');
    const bad = join(dir, 'bad.yaml');
    (await import('node:fs')).writeFileSync(bad, text);
    const r = await runCli(['spec', 'validate', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}: strategy.canary.steps[2]: expected a number <= 100, found number 250`);
    expect(r.stderr).toContain('nothing was changed');
  });

  it('spec init refuses to overwrite without --force', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-'));
    const f = join(dir, 'r.yaml');
    expect((await runCli(['spec', 'init', '-f', f])).code).toBe(0);
    expect(existsSync(f)).toBe(true);
    const again = await runCli(['spec', 'init', '-f', f]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
  });

  it('rejects an unknown output format with exit 2', async () => {
    const r = await runCli(['spec', 'validate', 'examples/sdc-canary.yaml', '-o', 'xml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--output must be one of text, json, yaml/);
  });
});
