import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { DOCUMENT_LIMITS, structureProblems, type StructureLimits } from '../util/bounds.js';
import { InvalidInputError } from '../util/errors.js';

/**
 * The input layer every file format goes through before its own validator: read a bounded amount of text
 * from a regular file (or stdin), refuse directories, devices, binary and empty files, parse YAML or JSON
 * with line and column on syntax errors, then check the parsed document's bounds (depth, expanded size,
 * self-reference). Each failure is an InvalidInputError (exit 2) naming the file.
 */
export interface ReadLimits {
  /** Largest file accepted, in bytes. */
  maxBytes: number;
  /** What the file should be, for messages: "a release spec (YAML or JSON)". */
  what: string;
}

export const MB = 1024 * 1024;
const STDIN = '-';

function fail(file: string, message: string, path = ''): never {
  throw new InvalidInputError(`${file}: ${message}`, [{ file, path, message }]);
}

const sizeText = (n: number) => (n >= MB ? `${(n / MB).toFixed(n % MB ? 1 : 0)} MB` : `${n} bytes`);

/** Bytes of a file (or stdin for "-"), at most `limits.maxBytes`; directories and devices are refused. */
export function readInputBytes(file: string, limits: ReadLimits): Buffer {
  const name = file === STDIN ? 'stdin' : file;
  let fd: number;
  if (file === STDIN) fd = 0;
  else {
    let st;
    try {
      st = statSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      fail(name, code === 'ENOENT' ? `file not found; expected ${limits.what}` : code === 'EACCES' ? 'permission denied: cannot read the file' : `cannot read the file (${code ?? (err as Error).message})`);
    }
    if (st.isDirectory()) fail(name, `is a directory; expected ${limits.what}`);
    // FIFOs are allowed (`<(cmd)`, pipes); devices such as /dev/zero never end.
    if (!st.isFile() && !st.isFIFO()) fail(name, `is not a regular file (a device or socket); expected ${limits.what}`);
    if (st.isFile() && st.size > limits.maxBytes) fail(name, `is ${sizeText(st.size)}; expected ${limits.what} of at most ${sizeText(limits.maxBytes)}`);
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      fail(name, `cannot open the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  try {
    if (file !== STDIN && fstatSync(fd).isDirectory()) fail(name, `is a directory; expected ${limits.what}`);
    const chunks: Buffer[] = [];
    let total = 0;
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') continue; // non-blocking stdin: wait for more
        if (code === 'EOF') break;
        fail(name, `cannot read (${code ?? (err as Error).message}); expected ${limits.what}`);
      }
      if (n === 0) break;
      total += n;
      if (total > limits.maxBytes) fail(name, `is larger than ${sizeText(limits.maxBytes)}; expected ${limits.what} of at most that size`);
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks);
  } finally {
    if (file !== STDIN) closeSync(fd);
  }
}

/** UTF-8 text of a file, refusing empty and binary content. */
export function readInputText(file: string, limits: ReadLimits): string {
  const name = file === STDIN ? 'stdin' : file;
  const bytes = readInputBytes(file, limits);
  if (bytes.length === 0 || !/\S/.test(bytes.toString('utf8'))) fail(name, `is empty; expected ${limits.what}`);
  if (bytes.includes(0)) fail(name, `holds binary data (a NUL byte at offset ${bytes.indexOf(0)}); expected ${limits.what} as text`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    return fail(name, `is not UTF-8 text; expected ${limits.what}`);
  }
}

/** Line and column (1-based) of a character offset. */
function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return `${line}:${offset - before.lastIndexOf('\n')}`;
}

/** Throw the bounds problems of a parsed document, if any. */
export function checkBounds(doc: unknown, file: string, limits: StructureLimits = DOCUMENT_LIMITS): void {
  const problems = structureProblems(doc, file, limits);
  if (problems.length) throw new InvalidInputError(`${file}: the document is outside the limits clover-cd reads`, problems);
}

/** Parse YAML (JSON is YAML too) with bounded depth and aliases; syntax errors name the line and column. */
export function parseYamlText(text: string, file: string, limits: StructureLimits = DOCUMENT_LIMITS): unknown {
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: file, maxDepth: limits.maxDepth, maxAliases: 1000 });
  } catch (err) {
    const e = err as { mark?: { line: number; column: number }; reason?: string; message: string };
    const where = e.mark ? `${file}:${e.mark.line + 1}:${e.mark.column + 1}` : file;
    const reason = (e.reason ?? e.message.split('\n')[0]).replace(/\s*\(\d+:\d+\)$/, '');
    throw new InvalidInputError(`${where}: not valid YAML: ${reason}`, [{ file, path: e.mark ? `line ${e.mark.line + 1}, column ${e.mark.column + 1}` : '', message: `expected valid YAML: ${reason}` }]);
  }
  checkBounds(doc, file, limits);
  return doc;
}

/** Parse JSON; syntax errors name the line and column; the document's bounds are checked. */
export function parseJsonText(text: string, file: string, limits: StructureLimits = DOCUMENT_LIMITS): unknown {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const pos = /at position (\d+)/.exec(msg);
    const at = pos ? lineCol(text, Number(pos[1])) : undefined;
    const reason = msg.replace(/^.*?(Unexpected|Expected|Bad)/, '$1').replace(/ in JSON at position \d+.*$/, '').replace(/\s*\(line \d+ column \d+\)$/, '');
    throw new InvalidInputError(`${file}${at ? `:${at}` : ''}: not valid JSON: ${reason}`, [{ file, path: at ? `line ${at.replace(':', ', column ')}` : '', message: `expected valid JSON: ${reason}` }]);
  }
  checkBounds(doc, file, limits);
  return doc;
}

/** Read and parse a YAML or JSON file (or stdin for "-") through the bounds above. */
export function readDocument(file: string, opts: ReadLimits & { json?: boolean; structure?: StructureLimits }): unknown {
  const text = readInputText(file, opts);
  const name = file === STDIN ? 'stdin' : file;
  return opts.json ? parseJsonText(text, name, opts.structure) : parseYamlText(text, name, opts.structure);
}
