import { USER_AGENT_COLUMN } from './jtl.js';
import { JMX_TEMPLATE } from './templates.js';
import type { LoadPlan } from './types.js';
import { handlebars } from '../util/lazy-packages.js';

let compiledPlan: HandlebarsTemplateDelegate | undefined;
const template = (context: unknown) =>
  (compiledPlan ??= handlebars().compile(JMX_TEMPLATE, { strict: false }))(context);
const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** "2xx" / "30x" / 201 → an anchored regex alternative for a ResponseAssertion (2.13 has no OR mode). */
export function statusRegex(codes: string[]): string {
  return `^(${codes.map((c) => c.replace(/x/gi, '\\d')).join('|')})$`;
}

/**
 * LoadPlan → .jmx text for JMeter 2.13 and 5.x. The plan should already carry target/duration overrides
 * (withTarget / withDuration). Endless plans render loops -1 with the scheduler on.
 */
export function renderJmx(plan: LoadPlan, name = 'clover-cd load'): string {
  const requests = plan.requests.map((r) => {
    const u = new URL(r.url);
    return {
      label: r.label,
      domain: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port || (u.protocol === 'https:' ? '443' : '80'),
      protocol: u.protocol.replace(':', ''),
      path: `${u.pathname}${u.search}`,
      method: r.method,
      body: r.body,
      timeoutMs: r.timeoutMs ?? '',
      headers: Object.entries(r.headers).map(([k, v]) => ({ name: k, value: v })),
      userAgent: r.userAgent ?? '',
      thinkTimeMs: r.thinkTimeMs,
      statusPattern: r.assert?.status ? statusRegex(r.assert.status) : undefined,
      containsPatterns: (r.assert?.contains ?? []).map(escapeRegex),
      maxTimeMs: r.assert?.maxTimeMs,
    };
  });
  return template({
    name,
    threads: plan.threads,
    loops: plan.loops,
    rampS: plan.rampS,
    scheduler: plan.durationS ? 'true' : 'false',
    durationS: plan.durationS ?? '',
    throughputPerMinute: plan.throughput ? +(plan.throughput * 60).toFixed(3) : undefined,
    requests,
    userAgentVariable: USER_AGENT_COLUMN,
  });
}
