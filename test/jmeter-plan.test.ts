import { describe, it, expect } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import * as yaml from 'js-yaml';
import { defaultImage } from '../src/contract/images.js';
import {
  analyzeJtl,
  buildReport,
  evaluateCriteria,
  expectedSamples,
  JTL_COLUMNS,
  loadPlan,
  renderJmx,
  renderKubernetes,
  withDuration,
  withTarget,
} from '../src/jmeter/index.js';
import { InvalidInputError } from '../src/util/errors.js';
import { REPO } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'jmeter-plan-test-'));
const write = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const errorOf = (fn: () => unknown): InvalidInputError => {
  try {
    fn();
  } catch (e) {
    return e as InvalidInputError;
  }
  throw new Error('expected an error');
};

describe('load plan', () => {
  it("accepts Clover's jmeter_testplan.yaml unchanged", () => {
    const plan = loadPlan(join(REPO, 'examples/jmeter_testplan.yaml'));
    expect(plan).toMatchObject({ threads: 5, loops: 2, rampS: 60, durationS: 80 });
    expect(plan.requests.map((r) => [r.label, r.method, r.userAgent])).toEqual([
      ['url1', 'GET', 'chrome'],
      ['url2', 'GET', 'safari'],
    ]);
    expect(expectedSamples(plan)).toEqual({ total: 20, byLabel: { url1: 10, url2: 10 } });
    expect(expectedSamples(plan, 2)?.total).toBe(40);
  });

  it('reads loops 0 and -1 as "until the duration ends" and refuses an endless plan without a duration', () => {
    const doc = (loops: number, duration?: number) => ({
      load_spec: { num_threads: 1, loops, duration },
      url_list: [{ name: 'root', url: 'host:80' }],
    });
    expect(loadPlan(doc(0, 5)).loops).toBe(-1);
    expect(loadPlan(doc(-1, 5)).loops).toBe(-1);
    expect(expectedSamples(loadPlan(doc(-1, 5)))).toBeUndefined();
    const e = errorOf(() => withDuration(loadPlan(doc(0))));
    expect(e.exitCode).toBe(2);
    expect(e.problems[0].path).toBe('load_spec.duration');
    expect(withDuration(loadPlan(doc(0)), 3).durationS).toBe(3);
  });

  it('reports malformed plans with field paths, did-you-mean and bad criteria', () => {
    const f = write(
      'bad.yaml',
      'load_spec:\n  num_threads: 0\n  loop: 2\nurl_list:\n  - url: http://x\n    methd: GET\n',
    );
    const e = errorOf(() => loadPlan(f));
    expect(e.exitCode).toBe(2);
    const paths = e.problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining(['load_spec.num_threads', 'load_spec.loop', 'url_list[0].methd']),
    );
    expect(e.problems.find((p) => p.path === 'load_spec.loop')?.message).toMatch(/did you mean "loops"/);
    const c = errorOf(() =>
      loadPlan({
        load_spec: { num_threads: 1 },
        url_list: [{ name: 'h', url: 'h' }],
        criteria: ['p95 > 2', 'latency >> 3'],
      }),
    );
    expect(c.problems).toHaveLength(1);
    expect(c.problems[0].path).toBe('criteria[1]');
  });

  it('keeps scheme, port and query, rewrites origins for a target, and XML-escapes what it renders', () => {
    const plan = loadPlan({
      load_spec: { num_threads: 2, loops: 3, headers: { 'X-Canary': 'a&b' } },
      url_list: [
        {
          name: 'q<&>"',
          url: 'https://svc.ns:8443/p?a=1&b=2',
          method: 'POST',
          body: { k: 'v' },
          'user-agent': 'ua "x"',
          assert: { status: ['2xx', 404], contains: 'o.k', max_time: '1s' },
        },
      ],
    });
    expect(plan.requests[0].url).toBe('https://svc.ns:8443/p?a=1&b=2');
    expect(withTarget(plan, 'http://127.0.0.1:9').requests[0].url).toBe('http://127.0.0.1:9/p?a=1&b=2');
    const xml = renderJmx(plan);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(xml);
    expect(doc.jmeterTestPlan).toBeDefined();
    const props = (xml.match(/<stringProp name="HTTPSampler\.(\w+)">([^<]*)</g) ?? []).join('\n');
    expect(props).toContain('HTTPSampler.protocol">https<');
    expect(props).toContain('HTTPSampler.port">8443<');
    expect(props).toContain('HTTPSampler.path">/p?a&#x3D;1&amp;b&#x3D;2<');
    expect(xml).toContain('testname="q&lt;&amp;&gt;&quot;"');
    expect(xml).toContain('ua &quot;x&quot;');
    expect(xml).toContain('^(2\\d\\d|404)$');
    expect(xml).toContain('o\\.k');
    expect(xml).toContain('<stringProp name="DurationAssertion.duration">1000</stringProp>');
    expect(xml).toContain('{&quot;k&quot;:&quot;v&quot;}');
  });

  it("renders distributed JMeter for Kubernetes in clover-cd's JMeter image: `load server` engines, a `load run --remote` controller", () => {
    const docs = yaml.loadAll(
      renderKubernetes(join(REPO, 'examples/jmeter_testplan.yaml'), {
        engines: 3,
        namespace: 'load',
        target: 'http://ingress:8080',
        durationS: 30,
      }),
    ) as any[];
    const [plan, , engines, controller] = docs;
    expect(yaml.load(plan.data['plan.yaml'])).toEqual(
      yaml.load(readFileSync(join(REPO, 'examples/jmeter_testplan.yaml'), 'utf8')),
    );
    expect(engines).toMatchObject({ kind: 'StatefulSet', spec: { replicas: 3 } });
    const engine = engines.spec.template.spec.containers[0];
    expect({ image: engine.image, argv: [...engine.command, ...engine.args] }).toEqual({
      image: defaultImage('clover-cd-jmeter'),
      argv: [
        'clover-cd',
        'load',
        'server',
        '--port',
        '1099',
        '--local-port',
        '50000',
        '--hostname',
        '$(POD_NAME).clover-cd-load-engine.load.svc',
      ],
    });
    const job = controller.spec.template.spec.containers[0];
    expect({ kind: controller.kind, image: job.image, argv: [...job.command, ...job.args] }).toEqual({
      kind: 'Job',
      image: defaultImage('clover-cd-jmeter'),
      argv: [
        'clover-cd',
        'load',
        'run',
        '/plan/plan.yaml',
        '--engine',
        'jmeter',
        '--remote',
        [0, 1, 2].map((i) => `clover-cd-load-engine-${i}.clover-cd-load-engine.load.svc:1099`).join(','),
        '--results',
        '/results/results.jtl',
        '--target',
        'http://ingress:8080',
        '--duration',
        '30',
      ],
    });
    expect(() => renderKubernetes({ load_spec: { num_threads: 0 }, url_list: [] })).toThrow(
      /load plan is invalid/,
    );
  });
});

const row = (ts: number, elapsed: number, label: string, code: string, ok: boolean, ua = 'chrome') =>
  [
    ts,
    elapsed,
    label,
    code,
    'OK',
    'tg 1-1',
    'text',
    ok,
    '',
    100,
    10,
    1,
    1,
    'http://h/',
    elapsed,
    0,
    0,
    ua,
  ].join(',');

describe('JTL analysis and criteria', () => {
  const t0 = 1_700_000_000_000;
  const lines = [JTL_COLUMNS.join(',')];
  // url1: 100 samples over 10 s, 1..100 ms; url2: 50 samples, 10 failing with 500 in its last 2 seconds
  for (let i = 0; i < 100; i++) lines.push(row(t0 + i * 100, i + 1, 'url1', '200', true));
  for (let i = 0; i < 50; i++)
    lines.push(row(t0 + i * 200, 10, 'url2', i >= 40 ? '500' : '200', i < 40, 'safari'));
  const jtl = write('a.jtl', lines.join('\n') + '\n');

  it('computes per-label and total statistics, codes and user-agents', async () => {
    const a = await analyzeJtl(jtl);
    const { total, labels } = a.summary;
    expect(total.count).toBe(150);
    expect(total.errors).toBe(10);
    expect(labels.url1).toMatchObject({
      count: 100,
      errors: 0,
      min: 1,
      max: 100,
      p50: 50,
      p90: 90,
      p95: 95,
      p99: 99,
    });
    expect(labels.url1.mean).toBeCloseTo(50.5);
    expect(labels.url2.codes).toEqual({ '200': 40, '500': 10 });
    expect(labels.url2.userAgents).toEqual({ safari: 50 });
    expect(total.userAgents).toEqual({ chrome: 100, safari: 50 });
    expect(labels.url1.throughput).toBeCloseTo(100 / 10, 0);
  });

  it('trips criteria when they should, with the observed value', async () => {
    const a = await analyzeJtl(jtl);
    const expected = { total: 150, byLabel: { url1: 100, url2: 60 } };
    const r = evaluateCriteria(
      [
        'p95 > 90ms',
        'p95 of url2 > 90ms',
        'count(url2) != expected',
        'count(url1) != expected',
        'error-rate > 1%',
        'error-rate of url2 > 50% for 2s',
        'rc5xx > 9',
        'avg-rt(url1) > 1s',
      ],
      a,
      expected,
    );
    expect(r.map((x) => x.tripped)).toEqual([true, false, true, false, true, true, true, false]);
    expect(r[0].observed).toBe('93ms'); // 150 samples: 1..100 ms and fifty of 10 ms
    expect(r[2].observed).toBe('50');
    expect(r[4].observed).toBe('6.67%');
    const report = buildReport(jtl, a, { criteria: ['p99 > 1s'], expected });
    expect(report.passed).toBe(true);
    expect(report.countMismatches).toEqual([{ label: 'url2', expected: 60, received: 50 }]);
  });

  it("reads JMeter 2.13's headerless default columns and quoted fields", async () => {
    const f = write(
      'headerless.jtl',
      [
        `${t0},44,GET /api,200,OK,tg 1-4,text,true,167,5,5,44`,
        `${t0 + 5},19,"a, label",200,"OK ""quoted""",tg 1-5,text,true,167,5,5,19`,
        `${t0 + 9},2014,GET /api,Non HTTP response code: java.net.ConnectException,Non HTTP response message: Connection refused,tg 1-1,text,false,2014,1,1,0`,
      ].join('\n') + '\n',
    );
    const a = await analyzeJtl(f, { userAgentByLabel: { 'GET /api': 'feas' } });
    expect(Object.keys(a.summary.labels).sort()).toEqual(['GET /api', 'a, label']);
    expect(a.summary.labels['GET /api']).toMatchObject({ count: 2, errors: 1, userAgents: { feas: 2 } });
    expect(a.summary.labels['GET /api'].codes['Non HTTP response code: java.net.ConnectException']).toBe(1);
  });

  it('refuses a file holding several appended runs', async () => {
    const f = write(
      'appended.jtl',
      [
        JTL_COLUMNS.join(','),
        row(t0, 1, 'u', '200', true),
        JTL_COLUMNS.join(','),
        row(t0, 1, 'u', '200', true),
      ].join('\n'),
    );
    await expect(analyzeJtl(f)).rejects.toThrow(/appended runs/);
  });
});
