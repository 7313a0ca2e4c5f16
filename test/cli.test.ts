import { describe, expect, it } from '@jest/globals';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  existsSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, REPO, runCli } from './helpers/cli.js';

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
    const text = readFileSync(join(dir, 'r.yaml'), 'utf8').replace(
      'steps: [10, 25, 50]',
      'steps: [10, 25, 250]',
    );
    const bad = join(dir, 'bad.yaml');
    (await import('node:fs')).writeFileSync(bad, text);
    const r = await runCli(['spec', 'validate', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `${bad}: strategy.canary.steps[2]: expected a number <= 100, found number 250`,
    );
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

describe('bin/clover-cd.js: compiled or sources', () => {
  // A checkout with both: the bin runs dist/ only when no source changed after the build started.
  const dir = mkdtempSync(join(tmpdir(), 'cli-bin-'));
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'src', 'cli'), { recursive: true });
  mkdirSync(join(dir, 'dist', 'cli'), { recursive: true });
  copyFileSync(BIN, join(dir, 'bin', 'clover-cd.js'));
  copyFileSync(join(REPO, 'bin', 'dist-fresh.js'), join(dir, 'bin', 'dist-fresh.js'));
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  writeFileSync(join(dir, 'src', 'cli', 'main.ts'), "const from: string = 'sources'; console.log(from);\n");
  writeFileSync(join(dir, 'dist', 'cli', 'main.js'), "console.log('dist');\n");
  const stamp = join(dir, 'dist', '.build-stamp');
  writeFileSync(stamp, '');
  const ran = () =>
    spawnSync(process.execPath, [join(dir, 'bin', 'clover-cd.js')], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, NODE_OPTIONS: '' },
    }).stdout.trim();
  const at = (path: string, s: number) => utimesSync(path, s, s);
  const now = Date.now() / 1000;

  it('runs dist when the build is at least as new as every source file and folder', () => {
    for (const p of ['src', 'src/cli', 'src/cli/main.ts']) at(join(dir, p), now - 60);
    at(stamp, now - 30);
    expect(ran()).toBe('dist');
  });

  it('runs the sources when one changed after the build, or dist was never built', () => {
    at(join(dir, 'src', 'cli', 'main.ts'), now);
    expect(ran()).toBe('sources');
    at(join(dir, 'src', 'cli', 'main.ts'), now - 60);
    at(join(dir, 'src', 'cli'), now); // a file added or removed
    expect(ran()).toBe('sources');
    at(join(dir, 'src', 'cli'), now - 60);
    rmSync(stamp);
    expect(ran()).toBe('sources');
    writeFileSync(stamp, '');
    expect(ran()).toBe('dist');
  });

  it('the build leaves a dist/ that is up to date as it is (npm pack runs it again while clover-cd processes run)', () => {
    mkdirSync(join(dir, 'scripts'), { recursive: true });
    copyFileSync(join(REPO, 'scripts', 'build.mjs'), join(dir, 'scripts', 'build.mjs'));
    for (const p of ['src', 'src/cli', 'src/cli/main.ts']) at(join(dir, p), now - 60);
    at(stamp, now - 30);
    const build = spawnSync(process.execPath, [join(dir, 'scripts', 'build.mjs')], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect({ code: build.status, stderr: build.stderr }).toEqual({
      code: 0,
      stderr: 'build: dist/ is up to date with src/ (--force rebuilds)\n',
    });
    expect(ran()).toBe('dist');
  });

  it('an installed package (no src/) runs dist', () => {
    rmSync(join(dir, 'src'), { recursive: true });
    expect(ran()).toBe('dist');
  });
});
