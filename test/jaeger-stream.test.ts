import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { eachDataElement } from '../src/services/jaeger.js';

describe('Jaeger search body streaming', () => {
  it('yields each trace of "data" whole, whatever the chunk boundaries and string contents', async () => {
    const traces = [
      {
        traceID: 'a1',
        spans: [{ spanID: '1', tags: [{ key: 'http.url', value: 'http://x/{a}[b]?q="c\\\\"' }] }],
      },
      { traceID: 'b2', spans: [], processes: { p1: { serviceName: 'héllo ✓ "data"' } } },
      { traceID: 'c3', spans: [{ spanID: '2', references: [] }] },
    ];
    const body = JSON.stringify({
      info: { data: [9] },
      'da\\"ta': [1],
      data: traces,
      total: 0,
      errors: [{ msg: '[' }],
    });
    const bytes = Buffer.from(body);
    for (const size of [1, 2, 3, 7, 64, bytes.length]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
      const got: unknown[] = [];
      await eachDataElement(
        (async function* () {
          yield* chunks;
        })(),
        (json) => got.push(JSON.parse(json)),
      );
      expect(got).toEqual(traces);
    }
  });

  it('yields every object of any "data" array (traces are objects), cut at any bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.dictionary(fc.string(), fc.jsonValue())),
        fc.array(fc.nat(40), { minLength: 1 }),
        async (data, cuts) => {
          const bytes = Buffer.from(JSON.stringify({ before: '"\\', data, after: [data] }));
          const chunks: Buffer[] = [];
          for (let i = 0, k = 0; i < bytes.length; k++) {
            const size = cuts[k % cuts.length] + 1;
            chunks.push(bytes.subarray(i, i + size));
            i += size;
          }
          const got: unknown[] = [];
          await eachDataElement(
            (async function* () {
              yield* chunks;
            })(),
            (json) => got.push(JSON.parse(json)),
          );
          expect(got).toEqual(JSON.parse(JSON.stringify(data)));
        },
      ),
      { numRuns: 200, seed: 23 },
    );
  });

  it('yields nothing for an empty or null data', async () => {
    for (const body of ['{"data":[],"errors":null}', '{"data":null,"errors":[{"msg":"x"}]}']) {
      const got: string[] = [];
      await eachDataElement(
        (async function* () {
          yield Buffer.from(body);
        })(),
        (j) => got.push(j),
      );
      expect(got).toEqual([]);
    }
  });
});
