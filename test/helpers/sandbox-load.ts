import { Agent, request } from 'node:http';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

/** Send `count` GET requests to `url` with `concurrency` in flight (keep-alive); bounded by `timeoutMs`. */
export async function sendRequests(
  url: string,
  count: number,
  opts: { concurrency?: number; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ codes: Record<string, number>; bodies: Map<string, number> }> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency ?? 16 });
  const codes: Record<string, number> = {};
  const bodies = new Map<string, number>();
  const u = new URL(url);
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let next = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request(
        { agent, host: u.hostname, port: u.port, path: u.pathname + u.search, headers: opts.headers },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (body += c));
          res.on('end', () => {
            codes[res.statusCode ?? 0] = (codes[res.statusCode ?? 0] ?? 0) + 1;
            const key = body.split(':')[0];
            bodies.set(key, (bodies.get(key) ?? 0) + 1);
            resolve();
          });
        },
      );
      req.on('error', () => {
        codes.error = (codes.error ?? 0) + 1;
        resolve();
      });
      req.end();
    });
  const worker = async () => {
    while (next < count && Date.now() < deadline) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 16 }, worker));
  agent.destroy();
  return { codes, bodies };
}

interface Sample {
  labels: Record<string, string>;
  value: string;
}

/** Sum of `metric` samples whose labels include every pair in `where`, grouped by the `by` label. */
export async function scrape(
  metricsUrl: string,
  metric: string,
  where: Record<string, string>,
  by: string,
): Promise<Record<string, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const families = parsePrometheusTextFormat(text) as Array<{ name: string; metrics: Sample[] }>;
  const fam = families.find((f) => f.name === metric);
  const out: Record<string, number> = {};
  for (const m of fam?.metrics ?? []) {
    if (!Object.entries(where).every(([k, v]) => m.labels[k] === v)) continue;
    out[m.labels[by]] = (out[m.labels[by]] ?? 0) + Number(m.value);
  }
  return out;
}

export function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(after)) {
    const d = after[k] - (before[k] ?? 0);
    if (d) out[k] = d;
  }
  return out;
}

/** Two-sided binomial interval (normal approximation) for `n` trials at probability `p`, confidence 99.9%. */
export function binomialInterval(n: number, p: number, z = 3.2905): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [n * p - z * sd, n * p + z * sd];
}
