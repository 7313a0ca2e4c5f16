/** JTL files, flag values, output paths and property files: hostile input is exit 2, never a crash or a write. */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkOutputPaths } from '../../src/cli/output-paths.js';
import {
  collectUrlFlag,
  parseDurationFlag,
  parseHostPortListFlag,
  parseIntegerFlag,
  parseNumberFlag,
  parseUrlFlag,
} from '../../src/cli/flags.js';
import { analyzeJtl, JTL_COLUMNS } from '../../src/jmeter/index.js';
import { csvField } from '../../src/jmeter/jtl.js';
import { formatProperties } from '../../src/stages/properties.js';
import { params, validOrInvalid, validOrInvalidAsync } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'clover-fuzz-'));
let n = 0;
const write = (text: string | Buffer) => {
  const f = join(dir, `f${n++}.jtl`);
  writeFileSync(f, text);
  return f;
};

const goodRow = fc.record({
  ts: fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
  el: fc.nat({ max: 60_000 }),
  label: fc.constantFrom('url1', 'url2', 'a,b', 'say "hi"'),
  code: fc.constantFrom('200', '500', 'Non HTTP'),
  ok: fc.boolean(),
});
const row = (r: {
  ts: number | string;
  el: number | string;
  label: string;
  code: string;
  ok: boolean | string;
}) =>
  [
    r.ts,
    r.el,
    /[",]/.test(r.label) ? `"${r.label.replace(/"/g, '""')}"` : r.label,
    r.code,
    'OK',
    't 1-1',
    'text',
    r.ok,
    '',
    10,
    10,
    1,
    1,
    'http://x/',
    1,
    0,
    0,
    'ua',
  ].join(',');

describe('JTL fuzz', () => {
  it('rows JMeter writes give finite statistics', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(goodRow, { minLength: 1, maxLength: 30 }), async (rows) => {
        const a = await analyzeJtl(write([JTL_COLUMNS.join(','), ...rows.map(row)].join('\n') + '\n'));
        expect(a.summary.total.count).toBe(rows.length);
        for (const v of [a.summary.total.mean, a.summary.total.p95, a.summary.total.throughput])
          expect(Number.isFinite(v)).toBe(true);
      }),
      params(60),
    );
  });

  it('broken rows (negative, non-numeric, shifted, XML, binary, empty) are exit 2 naming the line', async () => {
    const badCell = fc.constantFrom('-5', 'abc', '', 'NaN', '1e999', 'true', '<sample/>');
    const badRow = fc.oneof(
      fc
        .record({
          ts: fc.constant(1_700_000_000_000),
          el: badCell,
          label: fc.constant('u'),
          code: fc.constant('200'),
          ok: fc.constant(true),
        })
        .map(row),
      fc
        .record({
          ts: badCell,
          el: fc.constant(5),
          label: fc.constant('u'),
          code: fc.constant('200'),
          ok: fc.constant(true),
        })
        .map(row),
      goodRow.map((r) => 'x,' + row(r)), // shifted one column right
    );
    // A bad row before good ones is never the cut-off last line of a killed run: always refused.
    await fc.assert(
      fc.asyncProperty(
        fc.tuple(
          fc.array(goodRow, { maxLength: 3 }),
          badRow,
          fc.array(goodRow, { minLength: 1, maxLength: 3 }),
        ),
        async ([a, bad, b]) => {
          const r = await validOrInvalidAsync(() =>
            analyzeJtl(write([JTL_COLUMNS.join(','), ...a.map(row), bad, ...b.map(row)].join('\n') + '\n')),
          );
          expect(r.ok).toBe(false);
          if (!r.ok) expect(r.error.problems[0].path).toMatch(/^line \d+$/);
        },
      ),
      params(100),
    );
    const file = fc.oneof(
      fc.constantFrom(
        '<?xml version="1.0"?>\n<testResults version="1.2">\n</testResults>\n',
        '\u0000\u0001\u0002',
        'a,b,c\n1,2,3\n',
      ),
      fc.string({ maxLength: 100 }),
    );
    await fc.assert(
      fc.asyncProperty(file, async (text) => {
        const r = await validOrInvalidAsync(() => analyzeJtl(write(text), { requireSamples: true }));
        if (r.ok) expect(r.value.summary.total.count).toBeGreaterThan(0);
        else expect(r.error.problems.length + (r.error.message.includes('.jtl') ? 1 : 0)).toBeGreaterThan(0);
      }),
      params(120),
    );
    const r = await validOrInvalidAsync(() => analyzeJtl(dir));
    expect(r.ok).toBe(false);
  });
});

describe('JTL layouts JMeter and the tools that reshape its results write', () => {
  /** Labels as tools that reshape results leave them: a quote inside an unquoted field is a character (`say hi"`). */
  const label = fc.oneof(
    fc.constantFrom(
      'url1',
      'say hi"',
      'a"b',
      '5" disk',
      'x,"y"',
      '"quoted"',
      'two\nlines',
      'elapsed',
      'timeStamp',
      '__proto__',
      'constructor',
    ),
    fc.string({ maxLength: 12 }).filter((l) => l.trim() === l && l !== ''),
  );
  const sample = fc.record({
    ts: fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
    el: fc.nat({ max: 60_000 }),
    label,
    ok: fc.boolean(),
  });
  const cell = (column: string, r: { ts: number; el: number; label: string; ok: boolean }): string => {
    if (column === 'label') return /^"|[,\n\r]/.test(r.label) ? csvField(r.label) : r.label;
    return String(
      {
        timeStamp: r.ts,
        elapsed: r.el,
        success: r.ok,
        responseCode: 200,
        responseMessage: 'OK',
        threadName: 't 1-1',
        dataType: 'text',
        bytes: 10,
        sentBytes: 10,
        grpThreads: 1,
        allThreads: 1,
        URL: 'http://x/',
        Latency: 1,
        IdleTime: 0,
        Connect: 0,
        userAgent: 'ua',
        failureMessage: '',
      }[column] ?? '',
    );
  };
  const jtl = (columns: string[], rows: Array<Parameters<typeof cell>[1]>, bom: boolean) =>
    `${bom ? '\ufeff' : ''}${[columns.join(','), ...rows.map((r) => columns.map((c) => cell(c, r)).join(','))].join('\n')}\n`;

  it('the same samples in any column order, with or without a byte-order mark, give the same statistics', async () => {
    const samples = fc.array(sample, { minLength: 1, maxLength: 20 });
    await fc.assert(
      fc.asyncProperty(
        samples,
        fc.shuffledSubarray(JTL_COLUMNS, { minLength: JTL_COLUMNS.length }),
        fc.boolean(),
        async (rows, columns, bom) => {
          const [a, b] = await Promise.all([
            analyzeJtl(write(jtl(JTL_COLUMNS, rows, false))),
            analyzeJtl(write(jtl(columns, rows, bom))),
          ]);
          expect(b.summary).toEqual(a.summary);
          expect(Object.keys(b.summary.labels).sort()).toEqual([...new Set(rows.map((r) => r.label))].sort());
          expect(b.summary.total.count).toBe(rows.length);
        },
      ),
      params(100),
    );
  });

  it('a quoted field that never closes is exit 2 naming its line, not rows silently lost', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(sample, { minLength: 2, maxLength: 6 }), fc.nat(), async (rows, at) => {
        const lines = jtl(
          JTL_COLUMNS,
          rows.map((r) => ({ ...r, label: 'plain' })),
          false,
        ).split('\n');
        const i = 1 + (at % (lines.length - 3));
        lines[i] = lines[i].replace(',plain,', ',"plain,');
        const r = await validOrInvalidAsync(() => analyzeJtl(write(lines.join('\n'))));
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.problems[0].path).toBe(`line ${i + 1}`);
      }),
      params(60),
    );
  });
});

describe('flag fuzz', () => {
  const hostPort = fc
    .tuple(
      fc.constantFrom('10.0.0.5', 'engine-0.jmeter', 'localhost', 'no-port', '::', '', 'a b', '-x'),
      fc.constantFrom('', ':1099', ':0', ':65536', ':99999', ':', '::'),
    )
    .map(([h, p]) => h + p);
  const text = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.constantFrom(
      '',
      ' ',
      'NaN',
      '1e999',
      '-1',
      '0',
      '10x',
      '99999999999h',
      '0s',
      '1.5',
      '0x10',
      'http://x:99999',
      'not a url',
      'redis://h:6379',
      'notredis://x',
      'no-port,::::',
      'nope',
    ),
    fc.array(hostPort, { minLength: 1, maxLength: 3 }).map((a) => a.join(',')),
  );
  it('every parser returns a value in range or throws exit 2 naming the flag', () => {
    fc.assert(
      fc.property(text, (v) => {
        const checks: Array<[string, () => unknown, (x: any) => boolean]> = [
          [
            '--weight',
            () => parseIntegerFlag('--weight', v, { min: 0, max: 100 }),
            (x) => Number.isInteger(x) && x >= 0 && x <= 100,
          ],
          ['--window', () => parseDurationFlag('--window', v), (x) => x > 0 && x <= 86_400_000],
          [
            '--duration',
            () => parseNumberFlag('--duration', v, { min: 0, exclusiveMin: true, max: 604_800 }),
            (x) => x > 0 && x <= 604_800,
          ],
          ['--prometheus', () => parseUrlFlag('--prometheus', v), (x) => /^https?:/.test(x)],
          ['--redis', () => parseUrlFlag('--redis', v, ['redis:', 'rediss:']), (x) => /^rediss?:/.test(x)],
          [
            '--scrape',
            () => collectUrlFlag('--scrape')(v, ['http://a:1/']),
            (x) => x.length === 2 && x.every((u: string) => /^https?:\/\/[^/]/.test(u)),
          ],
          [
            '--remote',
            () => parseHostPortListFlag('--remote', v),
            (x) =>
              x.every(
                (h: string) =>
                  /^[A-Za-z0-9.-]+:\d+$/.test(h) &&
                  Number(h.split(':')[1]) >= 1 &&
                  Number(h.split(':')[1]) <= 65535,
              ),
          ],
          [
            '--duration',
            () =>
              parseNumberFlag('--duration', v, { min: 0, exclusiveMin: true, max: 604_800, integer: true }),
            (x) => Number.isInteger(x) && x > 0,
          ],
        ];
        for (const [flag, parse, inRange] of checks) {
          const r = validOrInvalid(parse);
          if (r.ok) expect(inRange(r.value)).toBe(true);
          else expect(r.error.message).toContain(flag);
        }
      }),
      params(300),
    );
  });
});

describe('output path fuzz', () => {
  it('unwritable paths are refused before anything is created', () => {
    const root = mkdtempSync(join(tmpdir(), 'clover-fuzz-out-'));
    mkdirSync(join(root, 'dir'));
    writeFileSync(join(root, 'file'), 'x');
    const before = readdirSync(root).sort();
    const part = fc.constantFrom('dir', 'file', 'new', '..', '.', '', 'x.xml', 'a/b');
    const path = fc.oneof(
      fc.array(part, { minLength: 1, maxLength: 4 }).map((p) => join(root, ...p)),
      fc.constantFrom('/proc/nope/p', '/proc', '/sys/x', '/', '', '/dev/null'),
    );
    fc.assert(
      fc.property(path, fc.boolean(), (p, createsFolders) => {
        validOrInvalid(() => checkOutputPaths([{ flag: '--properties', path: p, createsFolders }]));
        expect(readdirSync(root).sort()).toEqual(before);
      }),
      params(200),
    );
  });
});

describe('property file fuzz', () => {
  /** Java's Properties.load, for the subset formatProperties writes. */
  const load = (text: string): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
      if (!m) throw new Error(`unparseable line ${JSON.stringify(line)}`);
      out[m[1]] = m[2].replace(/\\u([0-9a-f]{4})|\\(.)/g, (_, u, c) =>
        u
          ? String.fromCharCode(parseInt(u, 16))
          : (({ n: '\n', r: '\r', t: '\t', f: '\f' } as Record<string, string>)[c] ?? c),
      );
    }
    return out;
  };
  it('any value round-trips through the properties file Spinnaker reads', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.stringMatching(/^[A-Z][A-Z0-9_]{0,10}$/),
          fc.oneof(fc.string({ maxLength: 40, unit: 'grapheme' }), fc.integer(), fc.boolean()),
        ),
        (props) => {
          const back = load(formatProperties(props));
          for (const [k, v] of Object.entries(props)) expect(back[k]).toBe(String(v));
        },
      ),
      params(200),
    );
  });
});
