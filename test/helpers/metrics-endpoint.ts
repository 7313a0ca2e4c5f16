import { createServer } from 'node:http';
import type { Registry } from 'prom-client';
import { freePort } from './ports.js';

/** A prom-client registry served as a Prometheus text endpoint on a free loopback port. */
export async function serveMetrics(registry: Registry): Promise<{ url: string; close(): Promise<void> }> {
  const port = await freePort();
  const server = createServer(async (_req, res) => {
    res.setHeader('content-type', registry.contentType);
    res.end(await registry.metrics());
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}/metrics`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
