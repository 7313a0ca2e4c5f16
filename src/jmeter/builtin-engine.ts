import { createWriteStream } from 'node:fs';
import { redact } from '../util/redact.js';
import { STATUS_CODES } from 'node:http';
import { performance } from 'node:perf_hooks';
import { jtlRow, JTL_COLUMNS, type JtlSample } from './jtl.js';
import { statusRegex } from './render.js';
import type { LoadPlan, LoadProgress, PlanRequest } from './types.js';

/**
 * The builtin engine: JMeter's thread-group semantics on undici, for machines without JMeter. Each of the
 * plan's threads starts after rampS x i / threads seconds, runs the url_list `loops` times in order (or until
 * the duration ends), waits its think time before each request (JMeter timers run before the sampler),
 * and writes one JTL row per sample with the same columns a clover-cd JMeter run writes.
 */

const DEFAULT_TIMEOUT_MS = 30_000;
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export interface BuiltinRunOptions {
  jtl: string;
  signal?: AbortSignal;
  onProgress?: (p: LoadProgress) => void;
}

export async function runBuiltin(plan: LoadPlan, o: BuiltinRunOptions): Promise<{ interrupted: boolean }> {
  const out = createWriteStream(o.jtl, { flags: 'wx' });
  await new Promise<void>((resolve, reject) => {
    out.once('open', () => resolve());
    out.once('error', (err) => reject(err));
  });
  out.write(JTL_COLUMNS.join(',') + '\n');
  let buffer = '';
  const flush = async () => {
    if (!buffer) return;
    const chunk = buffer;
    buffer = '';
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  };

  // Stop: the caller's signal, or the plan's duration. In-flight requests get a short grace, then are cut.
  const stop = new AbortController();
  const cut = new AbortController();
  let interrupted = false;
  const onAbort = () => {
    interrupted = true;
    stop.abort();
    setTimeout(() => cut.abort(), 2000).unref();
  };
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });

  // Loaded here: ~200 ms at start-up that a command sending no load should not pay.
  const { Agent } = await import('undici');
  const agent = new Agent({ connections: plan.threads, pipelining: 1, keepAliveTimeout: 10_000 });
  const started = Date.now();
  const deadline = plan.durationS ? started + plan.durationS * 1000 : Infinity;
  const durationTimer = Number.isFinite(deadline)
    ? setTimeout(() => stop.abort(), deadline - started)
    : undefined;
  let active = 0;
  let sent = 0;
  let errors = 0;
  const progressTimer = o.onProgress
    ? setInterval(() => o.onProgress!({ sent, errors, elapsedS: (Date.now() - started) / 1000 }), 1000)
    : undefined;

  // Target throughput for all threads together: each request takes the next free slot.
  const interval = plan.throughput ? 1000 / plan.throughput : 0;
  let nextSlot = performance.now();
  const pace = async () => {
    if (!interval) return;
    const now = performance.now();
    nextSlot = Math.max(nextSlot, now);
    const wait = nextSlot - now;
    nextSlot += interval;
    await sleep(wait, stop.signal);
  };

  // Per-request constants, computed once rather than per sample.
  const prepared = new Map(
    plan.requests.map((r) => {
      const u = new URL(r.url);
      const accept = r.assert?.status ? new RegExp(statusRegex(r.assert.status)) : undefined;
      const reportUrl = redact(r.url); // the JTL is evidence: no userinfo in it
      return [
        r,
        {
          origin: u.origin,
          path: `${u.pathname}${u.search}`,
          accept,
          reportUrl,
          sentBytes: (r.body ? Buffer.byteLength(r.body) : 0) + r.url.length + 32,
        },
      ];
    }),
  );
  const sample = async (r: PlanRequest, thread: number): Promise<void> => {
    const u = prepared.get(r)!;
    const timeStamp = Date.now();
    const t0 = performance.now();
    let latency = 0;
    const s: JtlSample = {
      timeStamp,
      elapsed: 0,
      label: r.label,
      responseCode: '',
      responseMessage: '',
      threadName: `ThreadGroup 1-${thread + 1}`,
      success: false,
      failureMessage: '',
      bytes: 0,
      sentBytes: 0,
      grpThreads: active,
      allThreads: active,
      url: u.reportUrl,
      latency: 0,
      connect: 0,
      userAgent: r.userAgent ?? '',
    };
    const timeout = r.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    try {
      const res = await agent.request({
        origin: u.origin,
        path: u.path,
        method: r.method as 'GET',
        headers: r.headers,
        body: r.body,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: cut.signal,
      });
      latency = performance.now() - t0;
      let bytes = 0;
      let text = '';
      const wantBody = Boolean(r.assert?.contains?.length);
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (wantBody) text += chunk.toString('utf8');
      }
      let headerBytes = 17;
      for (const [k, v] of Object.entries(res.headers)) headerBytes += k.length + String(v).length + 4;
      s.responseCode = String(res.statusCode);
      s.responseMessage = STATUS_CODES[res.statusCode] ?? '';
      s.bytes = bytes + headerBytes;
      s.elapsed = Math.round(performance.now() - t0);
      s.success = u.accept ? u.accept.test(s.responseCode) : res.statusCode < 400;
      if (!s.success && r.assert?.status)
        s.failureMessage = `Test failed: code expected to match /${r.assert.status.join('|')}/`;
      const missing = r.assert?.contains?.find((c) => !text.includes(c));
      if (s.success && missing !== undefined) {
        s.success = false;
        s.failureMessage = `Test failed: text expected to contain /${missing}/`;
      }
      if (s.success && r.assert?.maxTimeMs !== undefined && s.elapsed > r.assert.maxTimeMs) {
        s.success = false;
        s.failureMessage = `The operation lasted too long: It took ${s.elapsed} milliseconds, but should not have lasted longer than ${r.assert.maxTimeMs} milliseconds.`;
      }
    } catch (err) {
      if (cut.signal.aborted) return; // cut short by the user's interrupt: not a sample of the target
      const e = err as { code?: string; name?: string; message?: string };
      s.elapsed = Math.round(performance.now() - t0);
      s.responseCode = `Non HTTP response code: ${e.code ?? e.name ?? 'Error'}`;
      s.responseMessage = `Non HTTP response message: ${e.message ?? String(err)}`;
    }
    s.latency = Math.round(latency);
    s.sentBytes = u.sentBytes;
    sent++;
    if (!s.success) errors++;
    buffer += jtlRow(s);
    if (buffer.length > 65536) await flush();
  };

  const thread = async (i: number) => {
    await sleep(plan.threads > 1 ? (plan.rampS * 1000 * i) / plan.threads : 0, stop.signal);
    if (stop.signal.aborted) return;
    active++;
    try {
      for (let loop = 0; plan.loops < 0 || loop < plan.loops; loop++) {
        for (const r of plan.requests) {
          if (r.thinkTimeMs) await sleep(r.thinkTimeMs, stop.signal);
          if (interval) await pace();
          if (stop.signal.aborted || Date.now() >= deadline) return;
          await sample(r, i);
        }
      }
    } finally {
      active--;
    }
  };

  try {
    await Promise.all(Array.from({ length: plan.threads }, (_, i) => thread(i)));
  } finally {
    clearTimeout(durationTimer);
    clearInterval(progressTimer);
    o.signal?.removeEventListener('abort', onAbort);
    await flush();
    await new Promise<void>((resolve, reject) =>
      out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    await agent.close();
  }
  o.onProgress?.({ sent, errors, elapsedS: (Date.now() - started) / 1000 });
  return { interrupted };
}
