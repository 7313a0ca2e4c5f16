import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { jsonErrorOffset } from '../util/json-offset.js';

/** Building blocks of the stage server's HTTP handling: client errors, bounded body reads, bounded JSON. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A client error with one field path, in the same shape as validation problems. */
export const badRequest = (path: string, message: string, status = 400) =>
  new HttpError(status, `invalid request: ${path ? `${path}: ` : ''}${message}`, {
    problems: [{ path, message }],
  });

export function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/**
 * The request body, at most `limit` bytes, within `timeoutMs` of the call (a slow body is cut: 408 and
 * the connection closed). A declared length over the limit is refused before anything is read.
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit)
    return Promise.reject(
      new HttpError(
        413,
        `request body of ${declared} bytes is over the limit of ${limit} bytes`,
        {},
        { connection: 'close' },
      ),
    );
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: HttpError) => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(Buffer.concat(chunks));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit)
        return done(
          new HttpError(413, `request body is over the limit of ${limit} bytes`, {}, { connection: 'close' }),
        );
      chunks.push(c);
    };
    const onEnd = () => done();
    const onError = () =>
      done(new HttpError(400, 'the request body was not received completely', {}, { connection: 'close' }));
    const onClose = () => !req.readableEnded && onError();
    const timer = setTimeout(
      () =>
        done(
          new HttpError(
            408,
            `the request body was not received within ${timeoutMs} ms`,
            {},
            { connection: 'close' },
          ),
        ),
      timeoutMs,
    );
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

/**
 * Where a JSON text nests deeper than `maxDepth` objects/arrays: the field path of the first too-deep value,
 * or undefined. A linear scan before JSON.parse, so deep input never reaches a recursive validator.
 */
export function tooDeep(text: string, maxDepth: number): string | undefined {
  const stack: Array<{ key?: string; index: number; isArray: boolean }> = [];
  let pendingKey: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (j < text.length && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top && !top.isArray && pendingKey === undefined) {
        try {
          pendingKey = JSON.parse(text.slice(i, j + 1)) as string;
        } catch {
          return undefined; // not JSON: JSON.parse reports it
        }
      }
      i = j;
    } else if (c === 0x3a /* : */) {
      /* the key stays pending until its value */
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.isArray) top.index++;
      pendingKey = undefined;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const top = stack[stack.length - 1];
      if (top) top.key = top.isArray ? `[${top.index}]` : pendingKey;
      pendingKey = undefined;
      stack.push({ index: 0, isArray: c === 0x5b });
      if (stack.length > maxDepth) {
        return stack
          .slice(0, -1)
          .map((f) => f.key ?? '')
          .reduce((p, k) => (k.startsWith('[') ? `${p}${k}` : p ? `${p}.${k}` : k), '');
      }
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      pendingKey = undefined;
    }
  }
  return undefined;
}

/** JSON.parse with a nesting limit; client errors are 400 with the field path. Undefined for an empty body. */
export function parseJsonBody(raw: Buffer, maxDepth: number): unknown {
  if (raw.length === 0) return undefined;
  const text = raw.toString('utf8');
  const deep = tooDeep(text, maxDepth);
  if (deep !== undefined) throw badRequest(deep, `nested more than ${maxDepth} levels deep`);
  try {
    return JSON.parse(text);
  } catch {
    // Where it broke, as a person finds it in the body: line and column, not a character offset.
    const pos = jsonErrorOffset(text);
    const where =
      pos === undefined
        ? ''
        : ` at line ${text.slice(0, pos).split('\n').length}, column ${pos - text.lastIndexOf('\n', pos - 1)}`;
    throw new HttpError(400, `request body is not valid JSON${where}`, {
      problems: [{ path: '', message: `expected a JSON object${where}` }],
    });
  }
}

/** decodeURIComponent as a client error (400 naming the URL part) instead of a URIError. */
export function decodeSegment(segment: string, path: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest(path, 'malformed percent-encoding in the URL');
  }
}

const answered = new WeakSet<Duplex>();

/**
 * node:http's answer to a request it cannot parse (a 100,000-character URL, a header block over the limit,
 * bad syntax), given so the client reads it: 414 / 431 / 400 with a JSON body and `Connection: close`, then
 * what the client is still sending is read and dropped until it closes (at most `lingerMs`). node's own
 * answer closed the socket with unread data in it, which resets the connection before the answer is read.
 */
export function answerClientError(
  err: Error & { code?: string; rawPacket?: Buffer; bytesParsed?: number },
  socket: Duplex,
  maxHeaderBytes: number,
  lingerMs = 5000,
): number | undefined {
  if (answered.has(socket)) return undefined; // the parser reports every later chunk again
  answered.add(socket);
  if (!socket.writable) return void socket.destroy();
  const parsed = err.rawPacket?.subarray(0, err.bytesParsed ?? err.rawPacket.length);
  const overflow = err.code === 'HPE_HEADER_OVERFLOW';
  // Still on the first line when the limit was reached: the URL is what is too long.
  const status = overflow
    ? parsed && !parsed.includes(0x0a)
      ? 414
      : 431
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? 408
      : 400;
  const error =
    status === 414
      ? `the request line (method and URL) is longer than ${maxHeaderBytes} bytes`
      : status === 431
        ? `the request headers are larger than ${maxHeaderBytes} bytes`
        : status === 408
          ? 'the request was not received in time'
          : 'malformed HTTP request';
  const body = JSON.stringify({
    error,
    problems: [{ path: status === 414 ? 'url' : status === 431 ? 'headers' : '', message: error }],
  });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.resume();
  return status;
}
