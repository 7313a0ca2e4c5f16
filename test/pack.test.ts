import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './helpers/cli.js';

/**
 * What a user gets from `npm pack` / the registry: the tarball (built by `prepare`) installed into an empty
 * folder, then the installed `clover-cd` run as a user would run it — no checkout, no tsx, no sources.
 */

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, NODE_OPTIONS: '', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const npm = (args: string[], cwd: string, timeoutMs = 120_000) =>
  run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, timeoutMs });

describe('npm pack → install into an empty folder → run', () => {
  const work = mkdtempSync(join(tmpdir(), 'clover-pack-'));
  const app = join(work, 'app');
  let files: string[] = [];
  let cli = '';
  let pkg: { name: string; version: string; dependencies: Record<string, string> };
  let installed = '';
  const serves: ChildProcess[] = [];

  beforeAll(async () => {
    pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
    // `npm pack` runs `prepare`: a build of this checkout's sources, or nothing when dist/ is already up to date.
    const packed = await npm(['pack', '--json', '--pack-destination', work], REPO, 180_000);
    expect(packed.stderr).not.toMatch(/error/i);
    expect(packed.code).toBe(0);
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    files = info.files.map((f) => f.path);
    // A user's project as it is: no overrides (ours do not reach a dependent), Node 20.
    writeFileSync(join(work, 'package.json'), JSON.stringify({ private: true }));
    rmSync(app, { recursive: true, force: true });
    // Dependencies come from the npm cache when it has them (offline first), the registry otherwise.
    const tarball = join(work, info.filename);
    let inst = await npm(['install', '--offline', '--omit=dev', tarball], work);
    if (inst.code !== 0) inst = await npm(['install', '--prefer-offline', '--omit=dev', tarball], work);
    expect(inst.stderr).toBe('');
    expect(inst.code).toBe(0);
    installed = join(work, 'node_modules', pkg.name);
    cli = join(work, 'node_modules', '.bin', 'clover-cd');
  }, 240_000);

  afterAll(() => {
    for (const s of serves) s.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it('ships what runs and nothing else: compiled code, its launcher and proto files, examples; no sources, tests or tsx', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'bin/clover-cd.js',
        'dist/cli/main.js',
        'dist/util/schema-validators.cjs', // the schemas compiled at build time
        'dist/jmeter/launcher/JMeterXStreamFix.java',
        'dist/services/proto/sdc.proto',
        'examples/sdc-canary.yaml',
        'deploy/sdc/istio.yaml',
      ]),
    );
    expect(files.filter((f) => /^(src|test|bench|\.ci|scripts)\//.test(f) || f.endsWith('.ts'))).toEqual([]);
    expect(existsSync(join(installed, 'src'))).toBe(false);
    // tsx (a devDependency with an esbuild postinstall) and bench-only packages are not installed for users.
    const deps = readdirSync(join(work, 'node_modules'));
    expect(deps).not.toContain('tsx');
    expect(deps).not.toContain('esbuild');
    expect(deps).not.toContain('autocannon');
    expect(deps).toContain('undici');
    // No undici that needs a newer Node than this one (the Kubernetes client 2.x brought undici 8).
    const undiciMajor = Number(
      JSON.parse(readFileSync(join(work, 'node_modules', 'undici', 'package.json'), 'utf8')).version.split(
        '.',
      )[0],
    );
    expect(undiciMajor).toBeLessThan(8);
  });

  it('prints its version', async () => {
    const r = await run(cli, ['--version'], { cwd: work });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('validates the packed demo spec and renders its pipeline', async () => {
    const spec = join(installed, 'examples', 'sdc-canary.yaml');
    const v = await run(cli, ['spec', 'validate', spec, '-o', 'json'], { cwd: work });
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({
      valid: true,
      release: 'http-lb-canary',
      strategy: 'canary',
    });
    const p = await run(cli, ['pipeline', 'render', spec], { cwd: work });
    expect(p.code).toBe(0);
    const pipeline = JSON.parse(p.stdout) as { application: string; stages: Array<{ type: string }> };
    expect(pipeline.application).toBe('sdc');
    expect(pipeline.stages.length).toBeGreaterThan(3);
  });

  it('judges the packed demo evidence bundle again, offline', async () => {
    const r = await run(
      cli,
      ['gate', '--replay', join(installed, 'examples', 'evidence', 'http-lb-canary-10pct-pass.json')],
      { cwd: work },
    );
    expect(r.stdout).toMatch(/^gate PASS/m);
    expect(r.code).toBe(0);
  });

  it('serves the stage API: /healthz answers', async () => {
    const child = spawn(cli, ['serve', '--port', '0', '--host', '127.0.0.1', '--allow-unauthenticated'], {
      cwd: work,
      // No kubeconfig: the server starts (the cluster is only contacted when a stage runs).
      env: { ...process.env, NODE_OPTIONS: '', KUBECONFIG: '', HOME: work },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    serves.push(child);
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start within 30 s: ${err}`)), 30_000);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+?)\s/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(200);
    child.kill('SIGTERM');
  });
});
