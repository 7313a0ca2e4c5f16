/** The tracer's HTTP endpoint: /metrics (Prometheus text), /api/v1/status, /api/v1/evidence?start&end&versions&service. */
import { createServer, type Server } from 'node:http';
import type { Tracer } from './tracer.js';

export function serveTracer(tracer: Tracer, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const json = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    void (async () => {
      try {
        if (url.pathname === '/metrics') {
          res.writeHead(200, { 'content-type': tracer.metrics.registry.contentType });
          res.end(await tracer.metrics.registry.metrics());
        } else if (url.pathname === '/api/v1/status') json(200, tracer.status());
        else if (url.pathname === '/api/v1/evidence') {
          const start = Number(url.searchParams.get('start'));
          const end = Number(url.searchParams.get('end') ?? Date.now());
          const versions = (url.searchParams.get('versions') ?? '').split(',').filter(Boolean);
          if (!Number.isFinite(start) || !versions.length)
            return json(400, { error: 'start (epoch ms) and versions (comma-separated) are required' });
          await tracer.prepareEvidence();
          json(200, tracer.evidence({ start, end }, versions, url.searchParams.get('service') ?? undefined));
        } else json(404, { error: `no route ${url.pathname}` });
      } catch (e) {
        json(500, { error: e instanceof Error ? e.message : String(e) });
      }
    })();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
