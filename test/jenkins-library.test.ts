/**
 * The Jenkins shared library (vars/cloverCd.groovy) run by Groovy the way a controller runs it
 * (test/jenkins/harness.groovy): `sh` scripts really run, against a stand-in clover-cd / docker / npm that record
 * their arguments; steps that need a workspace fail outside `node`; `input` inside `node` fails; every call the
 * library makes passes the script-security sandbox model. All cases run in one JVM; each `it` reads its record.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadSpec } from '../src/spec/load.js';
import { readRenderInput } from '../src/pipelines/inputs.js';
import { renderPipeline } from '../src/pipelines/render.js';
import { argv, runJenkinsHarness, steps, type Case } from './helpers/jenkins-harness.js';

const IMAGE = 'ghcr.io/clover-cd/clover-cd:0.1.0';
const FAKE_CLI = resolve('test/jenkins/fake/cli/clover-cd');
const work = mkdtempSync(join(tmpdir(), 'jenkins-library-'));
// Each hostile value would create its own marker file if any shell ever ran it.
const marker = `/tmp/clover-cd-marker-${randomBytes(6).toString('hex')}`;
const HOSTILE = [
  `'; touch ${marker}-quote; '`,
  `$(touch ${marker}-substitution)`,
  `\`touch ${marker}-backtick\``,
  `x; touch ${marker}-semicolon`,
  `spec\ntouch ${marker}-newline\n`,
  `"; touch ${marker}-double-quote; "`,
  `| touch ${marker}-pipe`,
  `&& touch ${marker}-and #`,
];
const HOSTILE_STEP = `1'; touch ${marker}-step; '`;
const markers = () => readdirSync('/tmp').filter((f) => f.startsWith(marker.slice('/tmp/'.length)));

let harness: ReturnType<typeof runJenkinsHarness>;
beforeAll(() => {
  harness = runJenkinsHarness(work, { values: HOSTILE, step: HOSTILE_STEP });
}, 270_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));
const get = (name: string) => harness.get(name);
const cloverRuns = (c: Case) => c.runs.filter((r) => r.argv[0] !== 'gate');
const RUN_ARGS = argv(
  'release run release.yaml --platform kubernetes --evidence-dir evidence --properties clover-cd.properties',
);
/** The step names in order, `node`/`end node` included: where each step ran. */
const flow = (c: Case) =>
  c.calls.map((x) => x.step).filter((s) => ['node', 'end node', 'input', 'checkout', 'unstash'].includes(s));

describe('cloverCd.release', () => {
  it.each([
    [0, 'SUCCESS', undefined],
    [1, 'FAILURE', /exit 1, gate failed/],
    [2, 'FAILURE', /exit 2, invalid input/],
    [3, 'UNSTABLE', undefined],
    [4, 'FAILURE', /exit 4, infrastructure error/],
    [130, 'ABORTED', /exit 130, interrupted/],
  ])('exit %i → %s, with JUnit, the gate report and the evidence published', (code, result, error) => {
    const c = get(`release exit ${code}`);
    expect(c.result).toBe(result);
    if (error) expect(c.error).toMatch(error);
    else expect(c.error).toBeUndefined();
    expect(cloverRuns(c).map((r) => r.argv)).toEqual([RUN_ARGS]);
    // exit 3 with a phase other than awaitingJudgment is inconclusive: no input step
    expect(steps(c, 'input')).toEqual([]);
    // the bundle this run wrote, replayed into JUnit and Markdown; the HTML page; the evidence archive
    expect(c.runs[1].argv).toEqual(
      argv(
        'gate --replay evidence/bundle-1.json --junit reports/bundle-1.xml --markdown reports/bundle-1.md',
      ),
    );
    expect(steps(c, 'junit')).toEqual([
      { step: 'junit', testResults: 'reports/bundle-1.xml', allowEmptyResults: true },
    ]);
    expect(steps(c, 'publishHTML')[0].target).toMatchObject({
      reportDir: 'reports',
      reportFiles: 'index.html',
    });
    expect(steps(c, 'writeFile')).toEqual([
      expect.objectContaining({
        file: 'reports/index.html',
        text: expect.stringContaining('### gate **PASS** &lt;b&gt;'),
      }),
    ]);
    expect(steps(c, 'archiveArtifacts').map((x) => x.artifacts)).toContain(
      'evidence/**, reports/**, clover-cd.properties, clover-cd.log',
    );
    // outside any agent, the library takes one for the run, with the repository checked out, and gives it back
    expect(flow(c)).toEqual(['node', 'checkout', 'end node']);
  });

  it('a judgment (exit 3, CLOVER_CD_PHASE=awaitingJudgment) waits at input with no agent held; continue approves that step', () => {
    const c = get('release waits for approval, continue');
    expect(flow(c)).toEqual(['node', 'checkout', 'end node', 'input', 'node', 'checkout', 'end node']);
    expect(steps(c, 'node').map((x) => x.label)).toEqual(['linux', 'linux']);
    expect(steps(c, 'input')).toEqual([
      expect.objectContaining({
        message: expect.stringContaining('step 1 of release.yaml passed its gate'),
        submitter: 'release-managers',
        choices: [['continue', 'rollback']],
      }),
    ]);
    expect(cloverRuns(c).map((r) => r.argv)).toEqual([RUN_ARGS, [...RUN_ARGS, '--approve', '1']]);
    // each agent publishes what it produced; the HTML page carries both gates
    expect(steps(c, 'junit').map((x) => x.testResults)).toEqual(
      argv('reports/bundle-1.xml reports/bundle-2.xml'),
    );
    expect(steps(c, 'writeFile')[1].text).toMatch(/bundle-1\.md[\s\S]*bundle-2\.md/);
    expect(c.result).toBe('SUCCESS');
  });

  it('rollback at the input aborts the release on an agent and fails the build; an aborted input rolls back too', () => {
    const c = get('release waits for approval, rollback');
    expect(cloverRuns(c).map((r) => r.argv)).toEqual([
      RUN_ARGS,
      ['release', 'abort', 'release.yaml', '--platform', 'kubernetes'],
    ]);
    expect(flow(c)).toEqual(['node', 'checkout', 'end node', 'input', 'node', 'checkout', 'end node']);
    expect(c.result).toBe('FAILURE');
    expect(c.error).toMatch(/rejected at the judgment after step 1/);
    const a = get('release waits for approval, aborted');
    expect(cloverRuns(a).map((r) => r.argv[1])).toEqual(['run', 'abort']);
    expect(flow(a)).toEqual(['node', 'unstash', 'end node', 'input', 'node', 'unstash', 'end node']);
    expect(a.error).toBe('Aborted by user');
  });

  it('refuses to run with judgments inside an agent (input would hold its executor), before anything runs', () => {
    const c = get('release with judgments inside node');
    expect(c.error).toMatch(
      /called inside node\/agent agent-1; a judgment waits at `input`.*Call it outside any agent/,
    );
    expect(c.runs).toEqual([]);
  });

  it("auto-approved inside the caller's agent: cli words, no second agent, an older build's bundle not republished, no HTML Publisher", () => {
    const c = get('release auto-approved inside node, no HTML Publisher');
    expect(flow(c)).toEqual(['node', 'end node']); // the harness's node, none of the library's own
    expect(c.runs[0].argv).toEqual(
      argv(
        'release run release.yaml --platform sandbox --evidence-dir evidence --properties clover-cd.properties --auto-approve',
      ),
    );
    expect(
      steps(c, 'sh').some((x) => x.script.includes(`'/usr/bin/env' '${FAKE_CLI}' 'release' 'run'`)),
    ).toBe(true);
    expect(c.runs.filter((r) => r.argv[0] === 'gate').map((r) => r.argv[2])).toEqual(
      argv('evidence/bundle-1.json'),
    );
    expect(steps(c, 'publishHTML')).toEqual([]);
    expect(steps(c, 'archiveArtifacts').map((x) => x.artifacts)).toEqual([
      'reports/index.html',
      'evidence/**, reports/**, clover-cd.properties, clover-cd.log',
    ]);
    expect(c.result).toBe('SUCCESS');
  });

  it('installs nothing by default: without clover-cd on PATH it fails naming the sources to choose from', () => {
    const c = get('release not on PATH');
    expect(c.error).toMatch(
      /clover-cd is not on the PATH of agent agent-1.*image: 'ghcr\.io\/clover-cd\/clover-cd:0\.1\.0'.*install: 'npm:/,
    );
    expect(c.npm).toEqual([]);
    expect(c.runs).toEqual([]);
    expect(get('release with a retired option').error).toMatch(/version: is no longer read.*install: 'npm:/);
    expect(get('release without spec').error).toMatch(/give spec/);
    expect(get('release with two sources').error).toMatch(
      /cli and image both say where clover-cd comes from/,
    );
    expect(get('release with an unknown source').error).toMatch(
      /names no known source: write install: 'npm:/,
    );
  });

  it('installs from the source the Jenkinsfile names (npm spec and registry), into the workspace, and runs that one', () => {
    const c = get('release installs from the named source');
    const ws = c.runs[0].env.PWD;
    expect(c.npm).toEqual([
      [
        'install',
        '--global',
        '--prefix',
        `${ws}/.clover-cd/npm`,
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        '--registry',
        'https://npm.example.internal/',
        'https://npm.example.internal/clover-cd/-/clover-cd-0.1.0.tgz',
      ],
    ]);
    expect(c.runs[0].env.VIA).toBe(`${ws}/.clover-cd/npm/bin/clover-cd`);
    expect(c.result).toBe('SUCCESS');
  });
});

describe('cloverCd.stage (the job a Spinnaker jenkins stage runs)', () => {
  it('runs clover-cd stage with the SPEC parameter in the environment, archives the property file, exit 4 → FAILURE', () => {
    const c = get('stage gate exit 4');
    expect(c.runs[0].argv).toEqual(
      argv(
        'stage gate --platform kubernetes --evidence-dir evidence --properties clover-cd.properties --spec-env CLOVER_CD_SPEC --step 2',
      ),
    );
    expect(c.runs[0].env).toMatchObject({
      CLOVER_CD_SPEC: 'eyJhIjoxfQ==',
      CLOVER_CD_EXECUTION_ID: 'E1',
      CLOVER_CD_PIPELINE: 'P',
    });
    expect(steps(c, 'archiveArtifacts')[0].artifacts).toBe('clover-cd.properties');
    expect(c.result).toBe('FAILURE');
    expect(get('stage traffic exit 0').result).toBe('SUCCESS');
    expect(get('stage traffic exit 0').runs[0].argv.slice(-4)).toEqual(argv('--spec release.yaml --step 1'));
    expect(get('stage exit 3').result).toBe('UNSTABLE');
  });

  it('image: runs the clover-cd image in exec form (docker run … image <arguments>), the workspace and kubeconfig mounted', () => {
    const c = get('stage in the image');
    const ws = c.runs[0].env.PWD;
    const env = [
      'CLOVER_CD_SPEC',
      'CLOVER_CD_EXECUTION_ID',
      'CLOVER_CD_PIPELINE',
      'CLOVER_CD_REDIS_URL',
      'SPINNAKER_GATE_URL',
      'BUILD_URL',
      'GIT_COMMIT',
      'KUBECONFIG',
      `CLOVER_CD_STATE_DIR=${ws}/.clover-cd`,
    ].flatMap((n) => ['--env', n]);
    const uid = `${process.getuid?.()}:${process.getgid?.()}`;
    const args = argv(
      'stage gate --platform kubernetes --evidence-dir evidence --properties clover-cd.properties --spec-env CLOVER_CD_SPEC --step 2',
    );
    expect(c.docker).toEqual([
      [
        'run',
        '--rm',
        '--user',
        uid,
        '--workdir',
        ws,
        '--volume',
        `${ws}:${ws}`,
        ...env,
        '--volume',
        '/secrets/kubeconfig:/secrets/kubeconfig:ro',
        IMAGE,
        ...args,
      ],
    ]);
    // what the container's entrypoint (clover-cd) received, with only the environment docker was told to pass
    expect(c.runs[0]).toEqual({
      argv: args,
      env: {
        PWD: ws,
        VIA: 'docker',
        CLOVER_CD_SPEC: 'eyJhIjoxfQ==',
        CLOVER_CD_EXECUTION_ID: 'E1',
        CLOVER_CD_PIPELINE: 'P',
        KUBECONFIG: '/secrets/kubeconfig',
        CLOVER_CD_STATE_DIR: `${ws}/.clover-cd`,
      },
    });
    expect(c.result).toBe('SUCCESS');
  });

  it('the example job template declares every parameter the generated jenkins stage sends', () => {
    const jenkinsfile = readFileSync('vars/clover-cd-stage.Jenkinsfile', 'utf8');
    const declared = new Set(
      [...jenkinsfile.matchAll(/(?:string|text)\(name: '([A-Z_]+)'/g)].map((m) => m[1]),
    );
    const p = renderPipeline(readRenderInput(loadSpec('examples/sdc-bluegreen.yaml'))).pipeline;
    const sent = new Set(
      p.stages.filter((s) => s.type === 'jenkins').flatMap((s) => Object.keys(s.parameters as object)),
    );
    expect([...sent].sort()).toEqual(['ACTION', 'EXECUTION_ID', 'PIPELINE', 'RELEASE', 'SPEC', 'STEP']);
    for (const name of sent) expect({ name, declared: declared.has(name) }).toEqual({ name, declared: true });
    expect(jenkinsfile).toContain('cloverCd.stage(');
  });

  it("the repository's Jenkinsfiles pass only options the library knows", () => {
    const library = readFileSync('vars/cloverCd.groovy', 'utf8');
    const list = (name: string) =>
      [...library.match(new RegExp(`${name} = \\[([^\\]]*)\\]`))![1].matchAll(/'(\w+)'/g)].map((m) => m[1]);
    const known = {
      release: [...list('COMMON_OPTIONS'), ...list('RELEASE_OPTIONS')],
      stage: [...list('COMMON_OPTIONS'), ...list('STAGE_OPTIONS')],
    };
    for (const file of ['Jenkinsfile', 'vars/clover-cd-stage.Jenkinsfile']) {
      for (const m of readFileSync(file, 'utf8').matchAll(/cloverCd\.(release|stage)\(([^)]*)\)/g)) {
        const used = [...m[2].matchAll(/(\w+):/g)].map((k) => k[1]);
        for (const option of used)
          expect({ file, option, known: known[m[1] as 'release' | 'stage'].includes(option) }).toEqual({
            file,
            option,
            known: true,
          });
      }
    }
  });
});

describe('values from Spinnaker and the job parameters never run as shell', () => {
  const [h0, h1, h2, h3, h4, h5, h6, h7] = HOSTILE;

  it("reach clover-cd unchanged, each one argument, through release (spec, context, platform, folders, the judgment's step)", () => {
    const c = get('hostile release');
    const args = [
      'release',
      'run',
      h0,
      '--platform',
      h2,
      '--evidence-dir',
      h3,
      '--properties',
      'clover-cd.properties',
      '--context',
      h1,
    ];
    expect(cloverRuns(c).map((r) => r.argv)).toEqual([args, [...args, '--approve', HOSTILE_STEP]]);
    expect(c.runs[1].argv).toEqual([
      'gate',
      '--replay',
      `${h3}/bundle-1.json`,
      '--junit',
      `${h4}/bundle-1.xml`,
      '--markdown',
      `${h4}/bundle-1.md`,
    ]);
    expect(steps(c, 'input')[0].submitter).toBe(h5);
    expect(steps(c, 'node')[0].label).toBe(h6);
    expect(c.result).toBe('SUCCESS');
  });

  it('reach clover-cd unchanged through stage (ACTION, STEP, WEIGHT, WINDOW as arguments; SPEC, EXECUTION_ID, PIPELINE as environment)', () => {
    const args = [
      'stage',
      h0,
      '--platform',
      'kubernetes',
      '--evidence-dir',
      'evidence',
      '--properties',
      'clover-cd.properties',
      '--spec-env',
      'CLOVER_CD_SPEC',
      '--step',
      h2,
      '--weight',
      h3,
      '--window',
      h4,
      '--context',
      h7,
    ];
    for (const name of ['hostile stage', 'hostile stage in the image']) {
      const c = get(name);
      expect(c.runs[0].argv).toEqual(args);
      expect(c.runs[0].env).toMatchObject({
        CLOVER_CD_SPEC: h1,
        CLOVER_CD_EXECUTION_ID: h5,
        CLOVER_CD_PIPELINE: h6,
      });
      expect(c.result).toBe('SUCCESS');
    }
    expect(get('hostile stage in the image').docker[0].slice(-args.length - 1)).toEqual([IMAGE, ...args]);
    expect(get('hostile install source').npm[0].at(-1)).toBe(h0);
  });

  it(`and run nothing: no ${marker}-* file exists`, () => {
    expect(harness.cases.size).toBeGreaterThan(20);
    expect(markers()).toEqual([]);
  });
});

describe('the harness refuses what a controller refuses', () => {
  it('input inside node, a workspace step outside node, a call no sandbox whitelist names', () => {
    expect(get('harness: input inside node').error).toMatch(
      /input inside node agent-1: the executor would be held/,
    );
    expect(get('harness: sh outside node').error).toMatch(
      /Required context class hudson\.FilePath is missing/,
    );
    expect(get('harness: a call the sandbox refuses').error).toBe(
      'Scripts not permitted to use new java.io.File java.lang.String',
    );
    for (const c of harness.cases.values()) {
      if (c.name.startsWith('harness:')) continue;
      expect({ name: c.name, error: c.error ?? '' }).toEqual({
        name: c.name,
        error: expect.not.stringMatching(
          /input inside node|hudson\.FilePath|Scripts not permitted|no facts for step/,
        ),
      });
    }
  });

  it('the library uses exactly the sandbox whitelist entries kept in test/conformance/jenkins/sandbox-whitelist.txt', () => {
    const kept = readFileSync('test/conformance/jenkins/sandbox-whitelist.txt', 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'));
    expect([...harness.sandboxUsed].sort()).toEqual([...kept].sort());
  });
});
