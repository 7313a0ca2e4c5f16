import { createServer, type IncomingMessage, type Server } from 'node:http';

/** A local HTTP server that counts what load tools send it: per path and per User-Agent. */
export interface HttpTarget {
  origin: string;
  port: number;
  byUserAgent: Record<string, number>;
  byPath: Record<string, number>;
  /** Requests by the value of the load engines' x-clover-cd-load header ('' without it). */
  byLoadTag: Record<string, number>;
  total(): number;
  stop(): Promise<void>;
}

export async function startHttpTarget(
  respond: (req: IncomingMessage) => { status?: number; body?: string } = () => ({}),
): Promise<HttpTarget> {
  const byUserAgent: Record<string, number> = {};
  const byPath: Record<string, number> = {};
  const byLoadTag: Record<string, number> = {};
  const server: Server = createServer((req, res) => {
    const ua = String(req.headers['user-agent'] ?? '');
    byUserAgent[ua] = (byUserAgent[ua] ?? 0) + 1;
    byPath[req.url ?? ''] = (byPath[req.url ?? ''] ?? 0) + 1;
    const tag = String(req.headers['x-clover-cd-load'] ?? '');
    byLoadTag[tag] = (byLoadTag[tag] ?? 0) + 1;
    req.resume();
    req.on('end', () => {
      const r = respond(req);
      res.writeHead(r.status ?? 200, { 'content-type': 'text/plain' });
      res.end(r.body ?? 'hello from the target');
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    byUserAgent,
    byPath,
    byLoadTag,
    total: () => Object.values(byPath).reduce((a, b) => a + b, 0),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
