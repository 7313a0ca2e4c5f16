import { Agent, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

/** One HTTP exchange between sidecars over a keep-alive agent, with a deadline. */
export interface HopResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export class HopError extends Error {
  constructor(
    readonly kind: 'timeout' | 'reset' | 'refused' | 'other',
    message: string,
  ) {
    super(message);
  }
}

export function createAgent(): Agent {
  // Keep-alive with a deep pool: per-hop cost is then one parse + one write, no TCP handshake.
  return new Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 512, scheduling: 'lifo' });
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'upgrade',
  'proxy-connection',
  'te',
  'trailer',
]);

export function forwardableHeaders(
  h: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

export function sendHop(
  agent: Agent,
  host: string,
  port: number,
  method: string,
  path: string,
  headers: OutgoingHttpHeaders,
  body: Buffer | undefined,
  timeoutMs: number,
): Promise<HopResponse> {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (body?.length) h['content-length'] = body.length;
    const req = request({ agent, host, port, method, path, headers: h }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
        });
      });
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(new HopError('reset', e.message));
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new HopError('timeout', `no response within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e instanceof HopError) return reject(e);
      const kind =
        e.code === 'ECONNREFUSED'
          ? 'refused'
          : e.code === 'ECONNRESET' || e.code === 'EPIPE'
            ? 'reset'
            : 'other';
      reject(new HopError(kind, e.message));
    });
    req.end(body);
  });
}

/** Headers of an upstream answer the sidecar passes back. */
/** The path without its query string (the `request_path` label). */
export const pathOnly = (path: string): string => {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
};

export function pickHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  const ct = h['content-type'];
  if (typeof ct === 'string') out['content-type'] = ct;
  return out;
}

export function retryableStatus(status: number, on: string[]): boolean {
  if (on.includes('5xx') && status >= 500) return true;
  if (on.includes('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
  return on.includes(String(status));
}

export function retryableError(kind: string, on: string[]): boolean {
  if (on.includes('5xx') || on.includes('gateway-error')) return true;
  if (kind === 'refused' || kind === 'other')
    return on.includes('connect-failure') || on.includes('refused-stream');
  if (kind === 'reset') return on.includes('reset');
  return false;
}
