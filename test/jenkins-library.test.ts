/**
 * The Jenkins shared library (vars/cloverCd.groovy) run by Groovy against a stub of the Jenkins steps it calls
 * (test/jenkins/harness.groovy: sh with scripted exit codes, junit, archiveArtifacts, publishHTML, input,
 * withEnv, currentBuild.result). All cases run in one JVM; each `it` reads its case's record.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadSpec } from '../src/spec/load.js';
import { readRenderInput } from '../src/pipelines/inputs.js';
import { renderPipeline } from '../src/pipelines/render.js';

interface Call {
  step: string;
  [k: string]: any;
}
interface Case {
  name: string;
  returned?: number;
  result: string;
  error?: string;
  calls: Call[];
}

/** A JAVA_HOME that exists: the given one, else the JDK of the `java` on PATH (Debian's default-java may be absent). */
function javaHome(): string | undefined {
  if (process.env.JAVA_HOME && existsSync(`${process.env.JAVA_HOME}/bin/java`)) return process.env.JAVA_HOME;
  const java = spawnSync('sh', ['-c', 'command -v java'], { encoding: 'utf8' }).stdout.trim();
  return java ? dirname(dirname(realpathSync(java))) : undefined;
}

const cases = new Map<string, Case>();
beforeAll(() => {
  const groovy = spawnSync('sh', ['-c', 'command -v groovy'], { encoding: 'utf8' }).stdout.trim();
  if (!groovy) throw new Error('groovy is not installed: bash scripts/setup.sh installs it (Debian package groovy)');
  const out = execFileSync(groovy, ['test/jenkins/harness.groovy', 'vars/cloverCd.groovy'], { encoding: 'utf8', env: { ...process.env, JAVA_HOME: javaHome() ?? '' }, timeout: 120_000 });
  for (const line of out.split('\n').filter((l) => l.startsWith('{'))) {
    const c = JSON.parse(line) as Case;
    cases.set(c.name, c);
  }
}, 150_000);

const get = (name: string) => {
  const c = cases.get(name);
  if (!c) throw new Error(`no case "${name}" in the harness output (have: ${[...cases.keys()].join(', ')})`);
  return c;
};
const steps = (c: Case, step: string) => c.calls.filter((x) => x.step === step);
const cloverRuns = (c: Case) => steps(c, 'sh').map((x) => x.script as string).filter((s) => /clover-cd (release|stage) /.test(s));

describe('cloverCd.release', () => {
  it.each([
    [0, 'SUCCESS', undefined],
    [1, 'FAILURE', /exit 1, gate failed/],
    [2, 'FAILURE', /exit 2, invalid input/],
    [3, 'UNSTABLE', undefined],
    [4, 'FAILURE', /exit 4, infrastructure error/],
    [130, 'ABORTED', /exit 130, interrupted/],
  ])('exit %i → %s', (code, result, error) => {
    const c = get(`release exit ${code}`);
    expect(c.result).toBe(result);
    if (error) expect(c.error).toMatch(error);
    else expect(c.error).toBeUndefined();
    expect(cloverRuns(c)).toEqual([expect.stringContaining("clover-cd release run 'release.yaml' --platform 'kubernetes' --evidence-dir 'evidence' --properties 'clover-cd.properties'")]);
    // exit 3 with a phase other than awaitingJudgment is inconclusive: no input step
    expect(steps(c, 'input')).toEqual([]);
    // JUnit of every evidence bundle, the HTML report, the evidence archive — whatever the result
    expect(steps(c, 'sh').some((x) => /gate --replay "\$b" --junit 'reports'\/"\$n"\.xml --markdown/.test(x.script))).toBe(true);
    expect(steps(c, 'junit')).toEqual([{ step: 'junit', testResults: 'reports/*.xml', allowEmptyResults: true }]);
    expect(steps(c, 'publishHTML')[0].target).toMatchObject({ reportDir: 'reports', reportFiles: 'index.html' });
    expect(steps(c, 'archiveArtifacts').map((x) => x.artifacts)).toContain('evidence/**, reports/**, clover-cd.properties, clover-cd.log');
    expect(steps(c, 'writeFile')).toEqual([{ step: 'writeFile', file: 'reports/index.html' }]);
  });

  it('a judgment (exit 3 with CLOVER_CD_PHASE=awaitingJudgment) becomes an input step; continue approves that step', () => {
    const c = get('release waits for approval, continue');
    expect(steps(c, 'input')).toEqual([expect.objectContaining({ message: expect.stringContaining('step 1 of release.yaml passed its gate'), choices: [['continue', 'rollback']] })]);
    const runs = cloverRuns(c);
    expect(runs).toHaveLength(2);
    expect(runs[1]).toContain('--approve 1');
    expect(c.result).toBe('SUCCESS');
  });

  it('rollback at the input aborts the release (rolled back) and fails the build; an aborted input rolls back too', () => {
    const c = get('release waits for approval, rollback');
    expect(steps(c, 'sh').some((x) => x.script.includes("release abort 'release.yaml'"))).toBe(true);
    expect(c.result).toBe('FAILURE');
    expect(c.error).toMatch(/rejected at the judgment after step 1/);
    const a = get('release waits for approval, aborted');
    expect(steps(a, 'sh').some((x) => x.script.includes("release abort 'release.yaml'"))).toBe(true);
    expect(a.error).toBe('Aborted by user');
  });

  it('without the HTML Publisher plugin the report is archived instead; --auto-approve and the platform are passed', () => {
    const c = get('release without HTML Publisher');
    expect(steps(c, 'publishHTML')).toEqual([]);
    expect(steps(c, 'archiveArtifacts').map((x) => x.artifacts)).toEqual(['reports/index.html', 'evidence/**, reports/**, clover-cd.properties, clover-cd.log']);
    expect(cloverRuns(c)[0]).toMatch(/--platform 'sandbox' .* --auto-approve/);
  });

  it('installs the published package when clover-cd is not on PATH, and runs that one', () => {
    const c = get('release installs the package');
    expect(steps(c, 'sh')[1].script).toBe("npm install --global --prefix '/ws/.clover-cd/npm' --no-audit --no-fund --loglevel=error 'clover-cd@0.1.0'");
    expect(steps(c, 'sh')[2].script).toContain("'/ws/.clover-cd/npm/bin/clover-cd' release run");
    expect(get('release without spec').error).toMatch(/give spec/);
  });
});

describe('cloverCd.stage (the job a Spinnaker jenkins stage runs)', () => {
  it('runs clover-cd stage with the SPEC parameter in the environment, archives the property file, exit 4 → FAILURE', () => {
    const c = get('stage gate exit 4');
    const run = steps(c, 'sh').find((x) => x.script.includes('clover-cd stage'))!;
    expect(run.script).toContain("clover-cd stage 'gate' --platform 'kubernetes' --evidence-dir 'evidence' --properties 'clover-cd.properties' --spec-env CLOVER_CD_SPEC --step '2'");
    expect(run.env).toEqual(['CLOVER_CD_SPEC=eyJhIjoxfQ==', 'CLOVER_CD_EXECUTION_ID=E1', 'CLOVER_CD_PIPELINE=P']);
    expect(steps(c, 'archiveArtifacts')[0].artifacts).toBe('clover-cd.properties');
    expect(c.result).toBe('FAILURE');
    expect(steps(c, 'junit')).toHaveLength(1);
    expect(get('stage traffic exit 0').result).toBe('SUCCESS');
    expect(get('stage exit 3').result).toBe('UNSTABLE');
  });

  it("the example job template declares every parameter the generated jenkins stage sends", () => {
    const jenkinsfile = readFileSync('vars/clover-cd-stage.Jenkinsfile', 'utf8');
    const declared = new Set([...jenkinsfile.matchAll(/(?:string|text)\(name: '([A-Z_]+)'/g)].map((m) => m[1]));
    const p = renderPipeline(readRenderInput(loadSpec('examples/sdc-bluegreen.yaml'))).pipeline;
    const sent = new Set(p.stages.filter((s) => s.type === 'jenkins').flatMap((s) => Object.keys(s.parameters as object)));
    expect([...sent].sort()).toEqual(['ACTION', 'EXECUTION_ID', 'PIPELINE', 'RELEASE', 'SPEC', 'STEP']);
    for (const name of sent) expect({ name, declared: declared.has(name) }).toEqual({ name, declared: true });
    expect(jenkinsfile).toContain('cloverCd.stage(');
  });
});
