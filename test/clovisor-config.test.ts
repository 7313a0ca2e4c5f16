/** clovisor's pure parts and its configuration sources (real redis-server); no privilege needed. */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  evaluateL4Rule,
  loadClovisorConfig,
  parseClovisorLabels,
  parseEgressMatch,
  readRedisConfig,
  spansUrlFromJaegerKey,
  buildEvidence,
} from '../src/clovisor/index.js';
import {
  EventPipeParser,
  decodeSessionEvent,
  monotonicClock,
  SESSION_EVENT_SIZE,
} from '../src/clovisor/records.js';
import type { SessionRecord } from '../src/clovisor/types.js';
import { InvalidInputError } from '../src/util/errors.js';
import { startRedis, type RedisFixture } from './helpers/redis.js';

const rec = (
  version: string,
  closeKind: SessionRecord['closeKind'],
  extra: Partial<SessionRecord> = {},
): SessionRecord => ({
  netns: 1,
  family: 4,
  role: 'server',
  closeKind,
  saddr: '10.0.0.2',
  daddr: '10.0.0.1',
  sport: 8080,
  dport: 40000,
  closedAt: 1000,
  retransmits: 0,
  synRetransmits: 0,
  resetsSent: 0,
  resetsReceived: 0,
  bytesAcked: 10,
  bytesReceived: 10,
  segsIn: 5,
  segsOut: 5,
  srttUs: 10,
  version,
  ...extra,
});
const kernel = {
  connsFull: 0,
  eventsLost: 0,
  flowsFull: 0,
  eventsSent: 0,
  resetsWithoutSocket: 0,
  untrackedCloses: 0,
  packets: 0,
  egressSkipped: 0,
  httpSent: 0,
  httpLost: 0,
};

describe('Clovisor keys and config', () => {
  let redis: RedisFixture;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => redis?.stop());

  it('reads clovisor_labels, both spellings of the egress key, and the Jaeger collector', async () => {
    const c = new Redis(redis.url);
    await c.rpush('clovisor_labels', 'default:app:http-lb', 'istio-system');
    await c.rpush('clovior_egress_match', '10.0.0.5:9180:http-lb', '0:53');
    await c.set('clovisor_jaeger_collector', 'jaeger-collector.clovisor:14268');
    c.disconnect();
    const cfg = await readRedisConfig(redis.url);
    expect(cfg.labels).toEqual([
      { namespace: 'default', labelSelector: 'app=http-lb' },
      { namespace: 'istio-system' },
    ]);
    expect(cfg.egress).toEqual([
      { ip: '10.0.0.5', port: 9180, podPrefix: 'http-lb' },
      { ip: '0.0.0.0', port: 53 },
    ]);
    expect(spansUrlFromJaegerKey(cfg.jaeger.collector)).toBe('http://jaeger-collector.clovisor:4318');
  });

  it('an unreachable Redis is an infrastructure error (exit 4)', async () => {
    await expect(readRedisConfig('redis://127.0.0.1:1')).rejects.toMatchObject({ exitCode: 4 });
  });

  it('an empty clovisor_labels means namespace default; bad egress entries are dropped', () => {
    expect(parseClovisorLabels([])).toEqual([{ namespace: 'default' }]);
    expect(parseEgressMatch(['x:y', '1.2.3.4:70000', '1.2.3.4:80'])).toEqual([{ ip: '1.2.3.4', port: 80 }]);
  });

  it('rejects a config file with the field path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clovisor-cfg-'));
    const file = join(dir, 'clovisor.yaml');
    writeFileSync(file, 'targets:\n  - workload: http-lb-v2\n    netns: clv-x\n');
    try {
      expect(() => loadClovisorConfig(file)).toThrow(InvalidInputError);
      try {
        loadClovisorConfig(file);
      } catch (e) {
        expect((e as InvalidInputError).details.join('\n')).toMatch(/targets\[0\].*version/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('l4 rule', () => {
  const ev = (v1: SessionRecord[], v2: SessionRecord[], lost = 0) =>
    buildEvidence([...v1, ...v2], { start: 0, end: 2000 }, ['v1', 'v2'], {
      targets: [],
      lostEvents: lost,
      kernel,
    });
  const many = (n: number, v: string, k: SessionRecord['closeKind'], x: Partial<SessionRecord> = {}) =>
    Array.from({ length: n }, () => rec(v, k, x));

  it('compares candidate to baseline: same reset rate passes, a higher one fails', () => {
    const same = ev(
      [...many(90, 'v1', 'fin'), ...many(10, 'v1', 'reset')],
      [...many(90, 'v2', 'fin'), ...many(10, 'v2', 'reset')],
    );
    expect(
      evaluateL4Rule({ resetRate: '2%', compare: true }, same, { stable: 'v1', candidate: 'v2' }).outcome,
    ).toBe('pass');
    expect(evaluateL4Rule({ resetRate: '2%' }, same, { stable: 'v1', candidate: 'v2' }).outcome).toBe('fail');
  });

  it('retransmit rate and connect failures', () => {
    const e = ev(many(10, 'v1', 'fin'), [
      ...many(10, 'v2', 'fin', { retransmits: 1, segsOut: 10 }),
      ...many(3, 'v2', 'connect-failed'),
    ]);
    const r = evaluateL4Rule({ retransmitRate: '5%', connectFailures: 2 }, e, {
      stable: 'v1',
      candidate: 'v2',
    });
    expect(r.outcome).toBe('fail');
    expect(r.reason).toMatch(/retransmit rate of v2 10.00%/);
    expect(r.reason).toMatch(/connect failures of v2: 3/);
  });

  it('no evidence or lost events never pass', () => {
    expect(evaluateL4Rule({ resetRate: '1%' }, undefined, { stable: 'v1', candidate: 'v2' }).outcome).toBe(
      'inconclusive',
    );
    expect(
      evaluateL4Rule({ resetRate: '1%' }, ev(many(5, 'v1', 'fin'), many(5, 'v2', 'fin'), 3), {
        stable: 'v1',
        candidate: 'v2',
      }).outcome,
    ).toBe('inconclusive');
  });
});

describe('event_pipe reader', () => {
  it('decodes samples split anywhere across chunks and counts lost records', () => {
    const b = Buffer.alloc(SESSION_EVENT_SIZE);
    b.writeUInt32LE(4026532000, 48);
    b.writeUInt16LE(2, 84);
    b.writeUInt16LE(8080, 86);
    b[90] = 2;
    b[91] = 2;
    b.set([10, 1, 2, 3], 92);
    const sample = JSON.stringify({ type: 9, cpu: 1, index: 0, timestamp: 5, data: [...b] });
    const text = `[${sample},{"type":2,"cpu":0,"index":0,"lost":{"id":7,"count":12}},${sample}]`;
    for (const step of [1, 7, 100, text.length]) {
      const p = new EventPipeParser();
      const got: Buffer[] = [];
      let lost = 0;
      for (let i = 0; i < text.length; i += step)
        p.push(
          text.slice(i, i + step),
          (d) => got.push(d),
          (n) => (lost += n),
        );
      expect(got.length).toBe(2);
      expect(lost).toBe(12);
      const r = decodeSessionEvent(got[1], monotonicClock());
      expect(r).toMatchObject({
        netns: 4026532000,
        role: 'server',
        closeKind: 'reset',
        saddr: '10.1.2.3',
        sport: 8080,
      });
    }
  });
});
