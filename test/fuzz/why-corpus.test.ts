/**
 * Every example listed under "Why" in the input-fuzzing issue, through the real binary: exit 2, a field
 * path (or the flag) in the message, no stack trace, nothing written. One spawn per case (node startup is
 * the cost), so the rest of the fuzzing runs in-process.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { runCli } from '../helpers/cli.js';
import { REPO } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'clover-why-'));
const SPEC = join(REPO, 'examples/sdc-canary.yaml');
const PLAN = join(REPO, 'examples/sdc-load.yaml');
const BUNDLE = join(REPO, 'test/fixtures/bundles/demo-faulty-v2.json');
const base = yaml.load(readFileSync(SPEC, 'utf8')) as any;
const bundle = JSON.parse(readFileSync(BUNDLE, 'utf8'));
const plan = yaml.load(readFileSync(PLAN, 'utf8')) as any;
writeFileSync(join(dir, 'sdc-load.yaml'), readFileSync(PLAN));

const file = (name: string, content: string | Buffer | object) => {
  const f = join(dir, name);
  writeFileSync(
    f,
    typeof content === 'string' || Buffer.isBuffer(content) ? content : JSON.stringify(content, null, 1),
  );
  return f;
};
const spec = (name: string, edit: (s: any) => void) => {
  const s = JSON.parse(JSON.stringify(base));
  edit(s);
  return file(name, s); // JSON is YAML
};
const withBundle = (name: string, edit: (b: any) => void) => {
  const b = structuredClone(bundle);
  edit(b);
  return file(name, b);
};
const chain = (n: number) => ({
  application: 'a',
  name: 'chain',
  spelEvaluator: 'v4',
  stages: Array.from({ length: n }, (_, i) => ({
    refId: String(i + 1),
    requisiteStageRefIds: i ? [String(i)] : [],
    type: 'wait',
    name: `w${i}`,
    waitTime: 1,
  })),
});
const webhook = (extra: object) => ({
  application: 'a',
  name: 'p',
  spelEvaluator: 'v4',
  stages: [
    {
      refId: '1',
      type: 'webhook',
      name: 'w',
      url: 'http://x',
      waitForCompletion: true,
      successStatuses: 'OK',
      terminalStatuses: 'FAILED',
      ...extra,
    },
  ],
});
const jtlHeader =
  'timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect';
const jtlRow = (el: string) => `1700000000000,${el},url1,200,OK,t 1-1,text,true,,10,10,1,1,http://x/,1,0,0`;
mkdirSync(join(dir, 'a-directory'));

/** [what the issue saw, argv, a text the output must contain (field path or flag)] */
const CASES: Array<[string, () => string[], RegExp, string?]> = [
  [
    'application: &a [*a]',
    () => ['spec', 'validate', file('circular.yaml', 'application: &a [*a]\n')],
    /application\[0\]: this value contains itself/,
  ],
  [
    'stages[0]=5',
    () => [
      'pipeline',
      'validate',
      file('s5.json', { application: 'a', name: 'p', spelEvaluator: 'v4', stages: [5] }),
    ],
    /stages\[0\]: a stage must be a JSON object/,
  ],
  [
    'a stage nested 5,000 deep',
    () => [
      'pipeline',
      'validate',
      file(
        'deep.json',
        `{"application":"a","name":"p","stages":[${'{"type":"pipeline","stages":['.repeat(5000)}{}${']}'.repeat(5000)}]}`,
      ),
    ],
    /stages\[0\]\.stages.*nested more than 64 levels/,
  ],
  [
    "echo '{{{' | pipeline validate -",
    () => ['pipeline', 'validate', '-'],
    /stdin: line 1, column 2: expected valid JSON/,
    '{{{',
  ],
  [
    'JTL with a negative elapsed',
    () => ['load', 'report', file('neg.jtl', [jtlHeader, jtlRow('-5'), jtlRow('3')].join('\n') + '\n')],
    /line 2: column elapsed: expected milliseconds/,
  ],
  [
    'load report <directory>',
    () => ['load', 'report', join(dir, 'a-directory')],
    /is a directory; expected a JMeter results file/,
  ],
  [
    'plan URL with port 99999',
    () => [
      'load',
      'render',
      file('port.yaml', { ...plan, url_list: [{ name: 'url1', url: 'http://x:99999/' }] }),
    ],
    /url_list\[0\]\.url: expected a port from 1 to 65535, found 99999/,
  ],
  [
    'replay "evidence": null',
    () => ['gate', '--replay', withBundle('evnull.json', (b) => (b.evidence = null))],
    /evidence: expected object, found null/,
  ],
  [
    'replay hops: null',
    () => ['gate', '--replay', withBundle('hops.json', (b) => (b.rules[0].conservation.hops = null))],
    /rules\[0\]\.conservation\.hops: expected array, found null/,
  ],
  [
    'replay rules: [null]',
    () => ['gate', '--replay', withBundle('rules.json', (b) => (b.rules = [null]))],
    /rules\[0\]: expected object, found null/,
  ],
  [
    'replay string windows',
    () => ['gate', '--replay', withBundle('win.json', (b) => (b.window = { start: 'a', end: 'b' }))],
    /window\.start: expected number, found string "a"/,
  ],
  [
    'replay reversed window',
    () => [
      'gate',
      '--replay',
      withBundle('rev.json', (b) => ([b.window.start, b.window.end] = [b.window.end, b.window.start])),
    ],
    /window\.end: expected a window end after its start/,
  ],
  [
    'replay missing release',
    () => ['gate', '--replay', withBundle('norel.json', (b) => delete b.release)],
    /release: required field is missing/,
  ],
  [
    'replay candidateWeight: 150',
    () => ['gate', '--replay', withBundle('w150.json', (b) => (b.candidateWeight = 150))],
    /candidateWeight: expected a number <= 100, found number 150/,
  ],
  [
    'replay durations ["a", null, {}]',
    () => [
      'gate',
      '--replay',
      withBundle('dur.json', (b) => (b.evidence.traces.durations.v1 = ['a', null, {}])),
    ],
    /evidence\.traces\.durations\.v1\[0\]: expected number, found string "a"/,
  ],
  [
    'load plan that is a directory',
    () => ['spec', 'validate', spec('plandir.yaml', (s) => (s.load.plan = 'a-directory'))],
    /load\.plan: ".*a-directory" is a directory/,
  ],
  [
    'load plan that is binary',
    () => [
      'spec',
      'validate',
      (file('bin.yaml', Buffer.from([0, 1, 2, 0])), spec('planbin.yaml', (s) => (s.load.plan = 'bin.yaml'))),
    ],
    /load\.plan: "bin\.yaml" cannot be used: holds binary data/,
  ],
  [
    'load plan that is empty',
    () => [
      'spec',
      'validate',
      (file('empty.yaml', ''), spec('planempty.yaml', (s) => (s.load.plan = 'empty.yaml'))),
    ],
    /load\.plan: "empty\.yaml" cannot be used: is empty/,
  ],
  [
    'load plan /dev/zero',
    () => ['spec', 'validate', spec('planzero.yaml', (s) => (s.load.plan = '/dev/zero'))],
    /load\.plan: "\/dev\/zero" is not a regular file/,
  ],
  [
    'load plan that is the spec itself',
    () => ['spec', 'validate', spec('self.yaml', (s) => (s.load.plan = 'self.yaml'))],
    /load\.plan: "self\.yaml" is this release spec itself/,
  ],
  [
    'errorRate max: 200%',
    () => ['spec', 'validate', spec('err200.yaml', (s) => (s.gate.rules = [{ errorRate: { max: '200%' } }]))],
    /gate\.rules\[0\]\.errorRate\.max: expected a percentage from 0% to 100%/,
  ],
  [
    'A/B regex (*bad[',
    () => [
      'spec',
      'validate',
      spec('regex.yaml', (s) => {
        delete s.strategy.canary;
        s.strategy.abTest = { match: [{ headers: { 'user-agent': { regex: '(*bad[' } } }], window: '30s' };
      }),
    ],
    /strategy\.abTest\.match\[0\]\.headers\.user-agent\.regex: expected a regular expression that compiles/,
  ],
  [
    'window: 0s',
    () => ['spec', 'validate', spec('w0.yaml', (s) => (s.strategy.canary.window = '0s'))],
    /strategy\.canary\.window: expected a duration longer than 0 and at most 24h, found "0s"/,
  ],
  [
    'window: 99999999999h',
    () => ['spec', 'validate', spec('wbig.yaml', (s) => (s.strategy.canary.window = '99999999999h'))],
    /strategy\.canary\.window: expected a duration longer than 0 and at most 24h/,
  ],
  [
    '300-character metadata.name',
    () => ['spec', 'validate', spec('long.yaml', (s) => (s.metadata.name = 'a'.repeat(300)))],
    /metadata\.name: expected at most 253 characters/,
  ],
  [
    'a spec with no gate rules',
    () => ['spec', 'validate', spec('nogate.yaml', (s) => delete s.gate)],
    /gate: required: a release needs at least one gate rule/,
  ],
  ['empty JTL', () => ['load', 'report', file('empty.jtl', '')], /the file is empty/],
  [
    'non-numeric JTL',
    () => ['load', 'report', file('nonnum.jtl', [jtlHeader, jtlRow('abc'), jtlRow('4')].join('\n') + '\n')],
    /line 2: column elapsed: expected milliseconds \(a number >= 0\), found "abc"/,
  ],
  [
    'XML JTL',
    () => ['load', 'report', file('xml.jtl', '<?xml version="1.0"?>\n<testResults version="1.2"/>\n')],
    /line 1: expected a CSV JTL; this file is XML/,
  ],
  [
    'column-shifted JTL',
    () => [
      'load',
      'report',
      file('shift.jtl', [jtlHeader, `x,${jtlRow('3')}`, `x,${jtlRow('4')}`].join('\n') + '\n'),
    ],
    /line 2: column timeStamp: expected epoch milliseconds or a date, found "x"/,
  ],
  [
    'num_threads: 1e12',
    () => [
      'load',
      'render',
      file('threads.yaml', { ...plan, load_spec: { ...plan.load_spec, num_threads: 1e12 } }),
    ],
    /load_spec\.num_threads: expected a number <= 100000/,
  ],
  [
    "--namespace 'Bad_NS!'",
    () => ['load', 'render', PLAN, '--kubernetes', '--namespace', 'Bad_NS!'],
    /--namespace must be a Kubernetes namespace/,
  ],
  [
    'statusJsonPath "$[[["',
    () => ['pipeline', 'validate', file('jp.json', webhook({ statusJsonPath: '$[[[' }))],
    /stages\[0\]\.statusJsonPath: expected a JsonPath/,
  ],
  [
    'expectedArtifacts: [1, null]',
    () => ['pipeline', 'validate', file('art.json', { ...webhook({}), expectedArtifacts: [1, null] })],
    /expectedArtifacts\[0\]: expected an expected-artifact object/,
  ],
  [
    "gate --prometheus 'not a url'",
    () => ['gate', SPEC, '--prometheus', 'not a url'],
    /--prometheus must be a URL/,
  ],
  [
    'stage load --window 10x',
    () => ['stage', 'load', '--spec', SPEC, '--window', '10x'],
    /--window must be a duration/,
  ],
  ['gate --until later', () => ['gate', SPEC, '--until', 'later'], /--until/],
  [
    '--redis notredis://x',
    () => ['visibility', 'stats', '--redis', 'notredis://x'],
    /--redis must be a redis or rediss URL/,
  ],
  [
    'load run --properties <directory>',
    () => ['load', 'run', PLAN, '--engine', 'builtin', '--properties', join(dir, 'a-directory')],
    /--properties: .*a-directory is a directory/,
  ],
  [
    'gate --replay b.json --properties /proc/nope/p',
    () => ['gate', '--replay', BUNDLE, '--properties', '/proc/nope/p'],
    /--properties: cannot create \/proc\/nope\/p/,
  ],
  [
    '"found undefined" for a missing field',
    () => [
      'pipeline',
      'validate',
      file('alias.json', {
        application: 'a',
        name: 'p',
        spelEvaluator: 'v4',
        stages: [{ refId: '1', type: 'runJobManifest', name: 'r', manifest: { kind: 'Job' } }],
      }),
    ],
    /stages\[0\]\.alias: .*found no value \(the field is missing\)/,
  ],
  [
    'the released service "[object Object]"',
    () => [
      'spec',
      'validate',
      spec('svcobj.yaml', (s) => {
        s.service.name = { a: 1 };
        s.gate.rules = [{ conservation: { hops: ['x'] } }];
      }),
    ],
    /service\.name: expected string, found an object/,
  ],
  [
    '--weight … got "NaN"',
    () => ['gate', SPEC, '--weight', 'NaN'],
    /--weight must be an integer from 0 to 100, got "NaN"/,
  ],
];

describe('every example of the issue gives exit 2 with a field path', () => {
  it.each(CASES.map(([what, argv, expected, input]) => ({ what, argv, expected, input })))(
    '$what',
    async ({ argv, expected, input }) => {
      const args = argv();
      const before = readdirSync(dir).sort();
      const r = await runCli(args, { cwd: dir, input, timeoutMs: 30_000 });
      const out = r.stdout + r.stderr;
      expect({ code: r.code, out }).toEqual({ code: 2, out: expect.stringMatching(expected) });
      expect(out).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/); // no stack trace
      expect(out).not.toMatch(/\bundefined\b|\[object Object\]/);
      expect(readdirSync(dir).sort()).toEqual(before); // nothing written (no evidence, no properties)
      if (process.env.WHY_MESSAGES)
        process.stdout.write(
          `$ clover-cd ${args
            .map((a) => a.replace(dir, '.'))
            .join(' ')
            .slice(0, 100)}\n${r.stderr}\n`,
        );
    },
  );

  // How fast it validates is bench/pipelines.bench.ts's to measure, not a test's.
  it('a 10,000-stage chain validates', async () => {
    const r = await runCli(['pipeline', 'validate', file('chain.json', chain(10_000))], { cwd: dir });
    expect(r.code).toBe(0);
  });
});

/**
 * The last hostile inputs, each as a new user types it: the exit code, the stream the message is on, the
 * message (file, field path or flag, expectation) and nothing written. Inputs that are valid give exit 0
 * with their data on stdout.
 */
const canaryJson = JSON.stringify(base, null, 1);
const dupKeys = 'apiVersion: clover-cd/v1\nkind: Release\nmetadata:\n  name: a\n  name: b\n';
const reordered =
  [
    'label,elapsed,timeStamp,success,responseCode',
    'url1,5,1700000000000,true,200',
    'url1,7,1700000001000,true,200',
  ].join('\n') + '\n';
type Outcome = {
  code: number;
  stream: 'stdout' | 'stderr';
  match: RegExp;
  env?: Record<string, string>;
  stdout?: RegExp;
  stderr?: RegExp;
};
const LAST: Array<[string, () => string[], Outcome]> = [
  [
    'gate --scrape nope',
    () => ['gate', SPEC, '--scrape', 'nope'],
    { code: 2, stream: 'stderr', match: /--scrape must be a URL such as http:\/\/host:port, got "nope"/ },
  ],
  [
    "load run --remote 'no-port,::::'",
    () => [
      'load',
      'run',
      'sdc-load.yaml',
      '--engine',
      'jmeter',
      '--remote',
      'no-port,::::',
      '--duration',
      '1',
      '--results',
      'r.jtl',
    ],
    {
      code: 2,
      stream: 'stderr',
      match:
        /--remote must be a comma-separated list of host:port .*"no-port" has no :port; "::::" has no :port/,
    },
  ],
  [
    'spec validate: JSON with a trailing comma',
    () => ['spec', 'validate', file('trailing.json', canaryJson.replace(/\n}$/, ',\n}'))],
    {
      code: 2,
      stream: 'stderr',
      match: /trailing\.json:\d+:\d+: not valid JSON: a comma before the closing bracket/,
    },
  ],
  [
    'load render: ramp_time 1.5',
    () => [
      'load',
      'render',
      file('ramp.yaml', { ...plan, load_spec: { ...plan.load_spec, ramp_time: 1.5 } }),
    ],
    { code: 2, stream: 'stderr', match: /load_spec\.ramp_time: expected integer, found number 1\.5/ },
  ],
  [
    'load render: duration 1.5',
    () => [
      'load',
      'render',
      file('dur15.yaml', { ...plan, load_spec: { ...plan.load_spec, duration: 1.5 } }),
    ],
    { code: 2, stream: 'stderr', match: /load_spec\.duration: expected integer, found number 1\.5/ },
  ],
  [
    'load render: url_list[0] without name',
    () => ['load', 'render', file('noname.yaml', { ...plan, url_list: [{ url: 'http://x/' }] })],
    { code: 2, stream: 'stderr', match: /url_list\[0\]\.name: required field is missing/ },
  ],
  [
    'pipeline validate []',
    () => ['pipeline', 'validate', file('empty-list.json', '[]')],
    {
      code: 2,
      stream: 'stderr',
      match: /empty-list\.json, pipeline "\(document\)": \(root\): an empty list holds no pipeline/,
    },
  ],
  [
    'pipeline validate: no name',
    () => [
      'pipeline',
      'validate',
      file('noname.json', {
        application: 'a',
        spelEvaluator: 'v4',
        stages: [{ refId: '1', type: 'wait', name: 'w', waitTime: 1 }],
      }),
    ],
    {
      code: 2,
      stream: 'stderr',
      match: /error: .*noname\.json, pipeline "#0": name: no "name": Front50 refuses/,
    },
  ],
  [
    'gate --replay rules: []',
    () => ['gate', '--replay', withBundle('norules.json', (b) => (b.rules = []))],
    { code: 2, stream: 'stderr', match: /norules\.json: rules: expected at least 1 item/ },
  ],
  [
    'gate --replay without candidateWeight',
    () => ['gate', '--replay', withBundle('nocw.json', (b) => delete b.candidateWeight)],
    {
      code: 2,
      stream: 'stderr',
      match: /nocw\.json: candidateWeight: required field is missing: rules\[1\] \(split\)/,
    },
  ],
  [
    'JTL with a byte-order mark',
    () => [
      'load',
      'report',
      file('bom.jtl', `\ufeff${[jtlHeader, jtlRow('5'), jtlRow('6')].join('\n')}\n`),
      '-o',
      'json',
    ],
    { code: 0, stream: 'stdout', match: /"count": 2,/ },
  ],
  [
    'JTL header in another order',
    () => ['load', 'report', file('order.jtl', reordered), '-o', 'json'],
    { code: 0, stream: 'stdout', match: /"count": 2,/ },
  ],
  [
    'a label ending in a lone "',
    () => [
      'load',
      'report',
      file(
        'quote.jtl',
        [jtlHeader, jtlRow('5').replace(',url1,', ',say hi",'), jtlRow('6')].join('\n') + '\n',
      ),
      '-o',
      'json',
    ],
    { code: 0, stream: 'stdout', match: /"say hi\\"": \{\n\s+"count": 1,/ },
  ],
  [
    'pipeline validate: warnings on stderr, the summary on stdout',
    () => [
      'pipeline',
      'validate',
      file('v3.json', {
        application: 'a',
        name: 'p',
        spelEvaluator: 'v3',
        stages: [{ refId: '1', type: 'wait', name: 'w', waitTime: 1 }],
      }),
    ],
    {
      code: 0,
      stream: 'stderr',
      match: /^warning: .*v3\.json, pipeline "p": spelEvaluator: "v3"/,
      stdout: /^\S*v3\.json: config, 1 pipeline\(s\): 0 error\(s\), 1 warning\(s\) — valid\n$/,
    },
  ],
  [
    'pipeline validate -o json: findings in the document and on stderr',
    () => [
      'pipeline',
      'validate',
      file('v3j.json', {
        application: 'a',
        name: 'p',
        spelEvaluator: 'v3',
        stages: [{ refId: '1', type: 'wait', name: 'w', waitTime: 1 }],
      }),
      '-o',
      'json',
    ],
    {
      code: 0,
      stream: 'stdout',
      match: /"valid": true,[^]*"path": "spelEvaluator"/,
      stderr: /^warning: .*v3j\.json, pipeline "p": spelEvaluator/,
    },
  ],
  [
    'spec validate -o json puts the findings in the document',
    () => ['spec', 'validate', spec('w0-json.yaml', (s) => (s.strategy.canary.window = '0s')), '-o', 'json'],
    { code: 2, stream: 'stdout', match: /"valid": false,[^]*"path": "strategy\.canary\.window"/ },
  ],
  [
    'a duplicate YAML key',
    () => ['spec', 'validate', file('dup.yaml', dupKeys)],
    { code: 2, stream: 'stderr', match: /dup\.yaml:5:3: not valid YAML: duplicated mapping key "name"/ },
  ],
  [
    'a spec that is not UTF-8',
    () => ['spec', 'validate', file('latin1.yaml', Buffer.from('metadata: { name: "caf\xe9" }\n', 'latin1'))],
    {
      code: 2,
      stream: 'stderr',
      match: /latin1\.yaml:1:23: is not UTF-8 text: byte 0xE9 at byte offset 22 is not valid UTF-8/,
    },
  ],
  [
    'load render --target nope',
    () => ['load', 'render', 'sdc-load.yaml', '--target', 'nope'],
    { code: 2, stream: 'stderr', match: /--target must be a URL such as http:\/\/host:port, got "nope"/ },
  ],
  [
    'stage gate --step 9',
    () => ['stage', 'gate', '--spec', SPEC, '--step', '9'],
    { code: 2, stream: 'stderr', match: /--step 9 is beyond the plan's 2 step\(s\) .*--step must be 1\.\.2/ },
  ],
  [
    'traffic set --step 9',
    () => ['traffic', 'set', SPEC, '--step', '9'],
    { code: 2, stream: 'stderr', match: /--step 9 is beyond the plan's 2 step\(s\)/ },
  ],
  [
    'stage traffic without --step',
    () => ['stage', 'traffic', '--spec', SPEC],
    { code: 2, stream: 'stderr', match: /the action needs --step \(1\.\.2\) for release http-lb-canary/ },
  ],
  [
    'notify github --sha nothex --bundle nope.json',
    () => ['notify', 'github', '--sha', 'nothex', '--bundle', 'nope.json'],
    {
      code: 2,
      stream: 'stderr',
      match:
        /--repo: which repository[^]*--sha: expected a full 40-character hexadecimal commit SHA, got "nothex"[^]*\$GITHUB_TOKEN: no GitHub token[^]*nope\.json: \(root\): file not found/,
      env: { GITHUB_TOKEN: '', GIT_COMMIT: '', GITHUB_SHA: '' },
    },
  ],
];

describe('the last hostile inputs: exit code, stream, message, nothing written', () => {
  it.each(LAST.map(([what, argv, outcome]) => ({ what, argv, outcome })))(
    '$what',
    async ({ argv, outcome }) => {
      const args = argv();
      const before = readdirSync(dir).sort();
      const r = await runCli(args, { cwd: dir, timeoutMs: 30_000, env: outcome.env });
      const other = outcome.stream === 'stdout' ? r.stderr : r.stdout;
      expect({ code: r.code, [outcome.stream]: r[outcome.stream] }).toEqual({
        code: outcome.code,
        [outcome.stream]: expect.stringMatching(outcome.match),
      });
      // Exit 2: nothing on stdout but a requested document; findings never on stdout in text mode.
      if (outcome.code === 2 && outcome.stream === 'stderr') expect(r.stdout).toBe('');
      if (outcome.stream === 'stdout' && outcome.code === 0 && !outcome.stderr) expect(other).toBe('');
      if (outcome.stdout) expect(r.stdout).toMatch(outcome.stdout);
      if (outcome.stderr) expect(r.stderr).toMatch(outcome.stderr);
      expect(r.stdout + r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);
      expect(readdirSync(dir).sort()).toEqual(before);
    },
  );
});
