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
  writeFileSync(f, typeof content === 'string' || Buffer.isBuffer(content) ? content : JSON.stringify(content, null, 1));
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
const chain = (n: number) => ({ application: 'a', name: 'chain', spelEvaluator: 'v4', stages: Array.from({ length: n }, (_, i) => ({ refId: String(i + 1), requisiteStageRefIds: i ? [String(i)] : [], type: 'wait', name: `w${i}`, waitTime: 1 })) });
const webhook = (extra: object) => ({ application: 'a', name: 'p', spelEvaluator: 'v4', stages: [{ refId: '1', type: 'webhook', name: 'w', url: 'http://x', waitForCompletion: true, successStatuses: 'OK', terminalStatuses: 'FAILED', ...extra }] });
const jtlHeader = 'timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect';
const jtlRow = (el: string) => `1700000000000,${el},url1,200,OK,t 1-1,text,true,,10,10,1,1,http://x/,1,0,0`;
mkdirSync(join(dir, 'a-directory'));

/** [what the issue saw, argv, a text the output must contain (field path or flag)] */
const CASES: Array<[string, () => string[], RegExp, string?]> = [
  ['application: &a [*a]', () => ['spec', 'validate', file('circular.yaml', 'application: &a [*a]\n')], /application\[0\]: this value contains itself/],
  ['stages[0]=5', () => ['pipeline', 'validate', file('s5.json', { application: 'a', name: 'p', spelEvaluator: 'v4', stages: [5] })], /stages\[0\]: a stage must be a JSON object/],
  ['a stage nested 5,000 deep', () => ['pipeline', 'validate', file('deep.json', `{"application":"a","name":"p","stages":[${'{"type":"pipeline","stages":['.repeat(5000)}{}${']}'.repeat(5000)}]}`)], /stages\[0\]\.stages.*nested more than 64 levels/],
  ["echo '{{{' | pipeline validate -", () => ['pipeline', 'validate', '-'], /stdin: line 1, column 2: expected valid JSON/, '{{{'],
  ['JTL with a negative elapsed', () => ['load', 'report', file('neg.jtl', [jtlHeader, jtlRow('-5'), jtlRow('3')].join('\n') + '\n')], /line 2: column elapsed: expected milliseconds/],
  ['load report <directory>', () => ['load', 'report', join(dir, 'a-directory')], /is a directory; expected a JMeter results file/],
  ['plan URL with port 99999', () => ['load', 'render', file('port.yaml', { ...plan, url_list: [{ url: 'http://x:99999/' }] })], /url_list\[0\]\.url: expected a port from 1 to 65535, found 99999/],
  ['replay "evidence": null', () => ['gate', '--replay', withBundle('evnull.json', (b) => (b.evidence = null))], /evidence: expected object, found null/],
  ['replay hops: null', () => ['gate', '--replay', withBundle('hops.json', (b) => (b.rules[0].conservation.hops = null))], /rules\[0\]\.conservation\.hops: expected array, found null/],
  ['replay rules: [null]', () => ['gate', '--replay', withBundle('rules.json', (b) => (b.rules = [null]))], /rules\[0\]: expected object, found null/],
  ['replay string windows', () => ['gate', '--replay', withBundle('win.json', (b) => (b.window = { start: 'a', end: 'b' }))], /window\.start: expected number, found string "a"/],
  ['replay reversed window', () => ['gate', '--replay', withBundle('rev.json', (b) => ([b.window.start, b.window.end] = [b.window.end, b.window.start]))], /window\.end: expected a window end after its start/],
  ['replay missing release', () => ['gate', '--replay', withBundle('norel.json', (b) => delete b.release)], /release: required field is missing/],
  ['replay candidateWeight: 150', () => ['gate', '--replay', withBundle('w150.json', (b) => (b.candidateWeight = 150))], /candidateWeight: expected a number <= 100, found number 150/],
  ['replay durations ["a", null, {}]', () => ['gate', '--replay', withBundle('dur.json', (b) => (b.evidence.traces.durations.v1 = ['a', null, {}]))], /evidence\.traces\.durations\.v1\[0\]: expected number, found string "a"/],
  ['load plan that is a directory', () => ['spec', 'validate', spec('plandir.yaml', (s) => (s.load.plan = 'a-directory'))], /load\.plan: ".*a-directory" is a directory/],
  ['load plan that is binary', () => ['spec', 'validate', (file('bin.yaml', Buffer.from([0, 1, 2, 0])), spec('planbin.yaml', (s) => (s.load.plan = 'bin.yaml')))], /load\.plan: "bin\.yaml" cannot be used: holds binary data/],
  ['load plan that is empty', () => ['spec', 'validate', (file('empty.yaml', ''), spec('planempty.yaml', (s) => (s.load.plan = 'empty.yaml')))], /load\.plan: "empty\.yaml" cannot be used: is empty/],
  ['load plan /dev/zero', () => ['spec', 'validate', spec('planzero.yaml', (s) => (s.load.plan = '/dev/zero'))], /load\.plan: "\/dev\/zero" is not a regular file/],
  ['load plan that is the spec itself', () => ['spec', 'validate', spec('self.yaml', (s) => (s.load.plan = 'self.yaml'))], /load\.plan: "self\.yaml" is this release spec itself/],
  ['errorRate max: 200%', () => ['spec', 'validate', spec('err200.yaml', (s) => (s.gate.rules = [{ errorRate: { max: '200%' } }]))], /gate\.rules\[0\]\.errorRate\.max: expected a percentage from 0% to 100%/],
  ['A/B regex (*bad[', () => ['spec', 'validate', spec('regex.yaml', (s) => { delete s.strategy.canary; s.strategy.abTest = { match: [{ headers: { 'user-agent': { regex: '(*bad[' } } }], window: '30s' }; })], /strategy\.abTest\.match\[0\]\.headers\.user-agent\.regex: expected a regular expression that compiles/],
  ['window: 0s', () => ['spec', 'validate', spec('w0.yaml', (s) => (s.strategy.canary.window = '0s'))], /strategy\.canary\.window: expected a duration longer than 0 and at most 24h, found "0s"/],
  ['window: 99999999999h', () => ['spec', 'validate', spec('wbig.yaml', (s) => (s.strategy.canary.window = '99999999999h'))], /strategy\.canary\.window: expected a duration longer than 0 and at most 24h/],
  ['300-character metadata.name', () => ['spec', 'validate', spec('long.yaml', (s) => (s.metadata.name = 'a'.repeat(300)))], /metadata\.name: expected at most 253 characters/],
  ['a spec with no gate rules', () => ['spec', 'validate', spec('nogate.yaml', (s) => delete s.gate)], /gate: required: a release needs at least one gate rule/],
  ['empty JTL', () => ['load', 'report', file('empty.jtl', '')], /the file is empty/],
  ['non-numeric JTL', () => ['load', 'report', file('nonnum.jtl', [jtlHeader, jtlRow('abc'), jtlRow('4')].join('\n') + '\n')], /line 2: column elapsed: expected milliseconds \(a number >= 0\), found "abc"/],
  ['XML JTL', () => ['load', 'report', file('xml.jtl', '<?xml version="1.0"?>\n<testResults version="1.2"/>\n')], /line 1: expected a CSV JTL; this file is XML/],
  ['column-shifted JTL', () => ['load', 'report', file('shift.jtl', [jtlHeader, `x,${jtlRow('3')}`, `x,${jtlRow('4')}`].join('\n') + '\n')], /line 2: column timeStamp: expected epoch milliseconds or a date, found "x"/],
  ['num_threads: 1e12', () => ['load', 'render', file('threads.yaml', { ...plan, load_spec: { ...plan.load_spec, num_threads: 1e12 } })], /load_spec\.num_threads: expected a number <= 100000/],
  ["--namespace 'Bad_NS!'", () => ['load', 'render', PLAN, '--kubernetes', '--namespace', 'Bad_NS!'], /--namespace must be a Kubernetes namespace/],
  ['statusJsonPath "$[[["', () => ['pipeline', 'validate', file('jp.json', webhook({ statusJsonPath: '$[[[' }))], /stages\[0\]\.statusJsonPath: expected a JsonPath/],
  ['expectedArtifacts: [1, null]', () => ['pipeline', 'validate', file('art.json', { ...webhook({}), expectedArtifacts: [1, null] })], /expectedArtifacts\[0\]: expected an expected-artifact object/],
  ["gate --prometheus 'not a url'", () => ['gate', SPEC, '--prometheus', 'not a url'], /--prometheus must be a URL/],
  ['stage load --window 10x', () => ['stage', 'load', '--spec', SPEC, '--window', '10x'], /--window must be a duration/],
  ['gate --until later', () => ['gate', SPEC, '--until', 'later'], /--until/],
  ['--redis notredis://x', () => ['visibility', 'stats', '--redis', 'notredis://x'], /--redis must be a redis or rediss URL/],
  ['load run --properties <directory>', () => ['load', 'run', PLAN, '--engine', 'builtin', '--properties', join(dir, 'a-directory')], /--properties: .*a-directory is a directory/],
  ['gate --replay b.json --properties /proc/nope/p', () => ['gate', '--replay', BUNDLE, '--properties', '/proc/nope/p'], /--properties: cannot create \/proc\/nope\/p/],
  ['"found undefined" for a missing field', () => ['pipeline', 'validate', file('alias.json', { application: 'a', name: 'p', spelEvaluator: 'v4', stages: [{ refId: '1', type: 'runJobManifest', name: 'r', manifest: { kind: 'Job' } }] })], /stages\[0\]\.alias: .*found no value \(the field is missing\)/],
  ['the released service "[object Object]"', () => ['spec', 'validate', spec('svcobj.yaml', (s) => { s.service.name = { a: 1 }; s.gate.rules = [{ conservation: { hops: ['x'] } }]; })], /service\.name: expected string, found an object/],
  ['--weight … got "NaN"', () => ['gate', SPEC, '--weight', 'NaN'], /--weight must be an integer from 0 to 100, got "NaN"/],
];

describe('every example of the issue gives exit 2 with a field path', () => {
  it.each(CASES.map(([what, argv, expected, input]) => ({ what, argv, expected, input })))('$what', async ({ argv, expected, input }) => {
    const args = argv();
    const before = readdirSync(dir).sort();
    const r = await runCli(args, { cwd: dir, input, timeoutMs: 30_000 });
    const out = r.stdout + r.stderr;
    expect({ code: r.code, out }).toEqual({ code: 2, out: expect.stringMatching(expected) });
    expect(out).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/); // no stack trace
    expect(out).not.toMatch(/\bundefined\b|\[object Object\]/);
    expect(readdirSync(dir).sort()).toEqual(before); // nothing written (no evidence, no properties)
    if (process.env.WHY_MESSAGES) process.stdout.write(`$ clover-cd ${args.map((a) => a.replace(dir, '.')).join(' ').slice(0, 100)}\n${r.stderr}\n`);
  });

  it('a 10,000-stage chain validates in under a second of validation time', async () => {
    const f = file('chain.json', chain(10_000));
    const t0 = Date.now();
    const r = await runCli(['pipeline', 'validate', f], { cwd: dir });
    expect(r.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000); // node + tsx start included; bench/pipelines.bench.ts measures the validation
  });
});
