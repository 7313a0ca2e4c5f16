import { describe, it, expect } from '@jest/globals';
import { TraceStore, type SpanInput } from '../src/sandbox/traces.js';

/** Spans roughly in time order (jitter, plus a few far out of order), as sidecars report them. */
function spans(count: number): SpanInput[] {
  let seed = 11;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const out: SpanInput[] = [];
  for (let i = 0; i < count; i++) {
    const late = i % 997 === 0 ? -50_000 : 0; // a span that started long before it was reported
    out.push({
      traceId: (i + 1).toString(16),
      spanId: (i + 1).toString(16),
      service: i % 3 ? 'http-lb' : 'clover-server1',
      operation: 'op',
      startUs: 1e12 + i * 10 + Math.floor(rnd() * 200) + late,
      durationUs: 100,
      nodeId: 'n',
      url: 'u',
      method: 'GET',
      statusCode: 200,
      userAgent: 'ua',
      upstreamCluster: 'c',
      requestSize: 0,
      responseSize: 1,
      requestId: `r${i}`,
    });
  }
  return out;
}

describe('trace store time windows', () => {
  it('finds exactly the spans a full scan finds, newest first, across the ring wrap and out-of-order spans', () => {
    const capacity = 3_000; // not a multiple of the block size, so the last block is partial
    const all = spans(7_500);
    const store = new TraceStore(capacity);
    for (const s of all) store.add(s);
    const held = all.slice(-capacity);
    const windows: Array<[number, number]> = [
      [1e12 + 45_000, 1e12 + 52_000],
      [1e12 + 44_990, 1e12 + 45_010],
      [1e12, 1e12 + 46_000], // reaches past the oldest held span
      [1e12 + 74_000, 1e12 + 80_000], // the newest block, still being written
      [1e12 + 15_000, 1e12 + 25_000], // only late-reported spans fall here
    ];
    for (const [startUs, endUs] of windows) {
      for (const limit of [5, 100, 10_000]) {
        const expected = held
          .filter((s) => s.service === 'http-lb' && s.startUs >= startUs && s.startUs <= endUs)
          .reverse()
          .slice(0, limit)
          .map((s) => s.traceId.padStart(32, '0'));
        expect(store.find({ service: 'http-lb', startUs, endUs, limit })).toEqual(expected);
      }
    }
    expect(
      store.find({ service: 'http-lb', startUs: 1e12 + 15_000, endUs: 1e12 + 25_000, limit: 100 }).length,
    ).toBeGreaterThan(0);
  });
});
