import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as yaml from 'js-yaml';
import { formatProperties } from '../src/stages/properties.js';
import { runCli } from './helpers/cli.js';

/** `clover-cd stage <action>` (what generated jenkins / runJob stages run) and its Spinnaker properties. */
describe('properties for Spinnaker', () => {
  it('escapes values as Java .properties and refuses keys SpEL cannot read', () => {
    expect(formatProperties({ CLOVER_CD_SUMMARY: 'FAIL: a=b #1\nnext', N: 3, SKIP: undefined })).toBe(
      'CLOVER_CD_SUMMARY=FAIL\\: a\\=b \\#1\\nnext\nN=3\n',
    );
    expect(formatProperties({ X: 'é ✓' })).toBe('X=\\u00e9 \\u2713\n');
    expect(formatProperties({ S: 'two\nlines' }, 'spinnaker-log')).toBe('SPINNAKER_PROPERTY_S=two lines\n');
    expect(() => formatProperties({ 'bad-key': 1 })).toThrow(/upper-case/);
  });
});

describe('clover-cd stage on a detached sandbox', () => {
  const state = mkdtempSync(join(tmpdir(), 'stage-cli-'));
  const env = { CLOVER_CD_STATE_DIR: state };
  const doc = yaml.load(readFileSync('examples/sdc-canary.yaml', 'utf8')) as Record<string, any>;
  doc.load = { plan: yaml.load(readFileSync('examples/sdc-load.yaml', 'utf8')), engine: 'builtin' };
  const specJson = JSON.stringify(doc);
  beforeAll(async () => {
    const up = await runCli(['sandbox', 'up', '--detach'], { env });
    expect(up.code).toBe(0);
  });
  afterAll(async () => {
    await runCli(['sandbox', 'down'], { env });
  });

  it('traffic → load → gate, as three CI jobs: exit codes, property file, Run Job property lines', async () => {
    const props = join(state, 'traffic.properties');
    const t = await runCli(
      [
        'stage',
        'traffic',
        '--platform',
        'sandbox',
        '--spec',
        resolve('examples/sdc-canary.yaml'),
        '--weight',
        '10',
        '--properties',
        props,
      ],
      { env },
    );
    expect(t.code).toBe(0);
    expect(readFileSync(props, 'utf8')).toContain(
      'CLOVER_CD_STATUS=SUCCEEDED\nCLOVER_CD_SUMMARY=progressing at step 1 (10%)\\: v1 90% / v2 10%\nCLOVER_CD_WEIGHT=10',
    );
    // Run Job: the spec as JSON in an env var, properties as SPINNAKER_PROPERTY_ lines on stdout.
    const l = await runCli(
      [
        'stage',
        'load',
        '--platform',
        'sandbox',
        '--spec-env',
        'SPEC',
        '--window',
        '3s',
        '--property-format',
        'spinnaker',
      ],
      { env: { ...env, SPEC: specJson } },
    );
    expect(l.code).toBe(0);
    expect(l.stdout).toMatch(/^SPINNAKER_PROPERTY_CLOVER_CD_ACTION=load$/m);
    // Jenkins: the SPEC parameter is base64 JSON; the gate judges the load window of the previous job.
    const gateProps = join(state, 'gate.properties');
    const g = await runCli(
      [
        'stage',
        'gate',
        '--platform',
        'sandbox',
        '--spec-env',
        'SPEC',
        '--weight',
        '10',
        '--properties',
        gateProps,
      ],
      { env: { ...env, SPEC: Buffer.from(specJson).toString('base64') } },
    );
    expect(g.code).toBe(0);
    const gp = readFileSync(gateProps, 'utf8');
    expect(gp).toContain('CLOVER_CD_VERDICT=pass');
    expect(gp).toMatch(/CLOVER_CD_EVIDENCE=.+\.json/);
  });

  it('gate --properties, as a Jenkins job runs it by hand: verdict, status and exit code in the key=value file', async () => {
    // No load runs during this window: too few samples is inconclusive (exit 3, Jenkins UNSTABLE).
    const props = join(state, 'manual-gate.properties');
    const junit = join(state, 'manual-gate.xml');
    const g = await runCli(
      [
        'gate',
        resolve('examples/sdc-canary.yaml'),
        '--platform',
        'sandbox',
        '--window',
        '2s',
        '--weight',
        '10',
        '--junit',
        junit,
        '--properties',
        props,
      ],
      { env },
    );
    expect(g.code).toBe(3);
    const text = readFileSync(props, 'utf8');
    expect(text).toContain(
      'CLOVER_CD_ACTION=gate\nCLOVER_CD_RELEASE=http-lb-canary\nCLOVER_CD_EXIT_CODE=3\nCLOVER_CD_STATUS=INCONCLUSIVE\n',
    );
    expect(text).toContain('CLOVER_CD_VERDICT=inconclusive');
    expect(text).toContain(`CLOVER_CD_JUNIT=${junit}`);
    const evidence = /CLOVER_CD_EVIDENCE=(.+)/.exec(text)![1].replace(/\\(.)/g, '$1');
    // The same file from a replay of that bundle tells the same verdict.
    const replayProps = join(state, 'replay.properties');
    const r = await runCli(['gate', '--replay', evidence, '--properties', replayProps], { env });
    expect(r.code).toBe(3);
    expect(readFileSync(replayProps, 'utf8')).toMatch(
      /CLOVER_CD_EXIT_CODE=3\nCLOVER_CD_STATUS=INCONCLUSIVE\n[\s\S]*CLOVER_CD_WEIGHT=10\nCLOVER_CD_VERDICT=inconclusive/,
    );
  });

  it('the candidate manifests inlined by the rendered pipeline are accepted without a checkout; a broken one is exit 2', async () => {
    const manifest = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'http-lb-v2', namespace: 'default' },
    };
    const withInline = (m: unknown) =>
      JSON.stringify({
        ...doc,
        service: { ...doc.service, candidateImage: undefined, candidateManifests: [m] },
      });
    const ok = await runCli(['stage', 'deploy', '--platform', 'sandbox', '--spec-env', 'SPEC'], {
      env: { ...env, SPEC: withInline(manifest) },
      cwd: state,
    });
    expect(ok.stderr).not.toContain('file not found');
    expect(ok.code).toBe(0);
    const bad = await runCli(['stage', 'deploy', '--platform', 'sandbox', '--spec-env', 'SPEC'], {
      env: { ...env, SPEC: withInline({ kind: 'Deployment' }) },
      cwd: state,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/service\.candidateManifests\[0\].*apiVersion, metadata\.name/);
  });

  it('an invalid spec in the environment is exit 2 naming the field', async () => {
    const r = await runCli(['stage', 'gate', '--platform', 'sandbox', '--spec-env', 'SPEC'], {
      env: { ...env, SPEC: JSON.stringify({ ...doc, service: { ...doc.service, port: 'http' } }) },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('service.port');
  });
});
