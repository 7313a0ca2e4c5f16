import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { DOCUMENT_LIMITS, structureProblems, type StructureLimits } from '../util/bounds.js';
import { InvalidInputError } from '../util/errors.js';
import { jsonErrorOffset } from '../util/json-offset.js';

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
      fail(
        name,
        code === 'ENOENT'
          ? `file not found; expected ${limits.what}`
          : code === 'EACCES'
            ? 'permission denied: cannot read the file'
            : `cannot read the file (${code ?? (err as Error).message})`,
      );
    }
    if (st.isDirectory()) fail(name, `is a directory; expected ${limits.what}`);
    // FIFOs are allowed (`<(cmd)`, pipes); devices such as /dev/zero never end.
    if (!st.isFile() && !st.isFIFO())
      fail(name, `is not a regular file (a device or socket); expected ${limits.what}`);
    if (st.isFile() && st.size > limits.maxBytes)
      fail(name, `is ${sizeText(st.size)}; expected ${limits.what} of at most ${sizeText(limits.maxBytes)}`);
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
      if (total > limits.maxBytes)
        fail(
          name,
          `is larger than ${sizeText(limits.maxBytes)}; expected ${limits.what} of at most that size`,
        );
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
  if (bytes.length === 0 || !/\S/.test(bytes.toString('utf8')))
    fail(name, `is empty; expected ${limits.what}`);
  if (bytes.includes(0))
    fail(
      name,
      `holds binary data (a NUL byte at offset ${bytes.indexOf(0)}); expected ${limits.what} as text`,
    );
  const text = bytes.toString('utf8');
  const bad = firstInvalidUtf8(bytes, text);
  if (bad !== undefined) {
    const line = bytes.subarray(0, bad).toString('latin1').split('\n').length;
    const column = bad - bytes.lastIndexOf(0x0a, bad - 1);
    const message = `is not UTF-8 text: byte 0x${bytes[bad].toString(16).toUpperCase().padStart(2, '0')} at byte offset ${bad} is not valid UTF-8; expected ${limits.what}, saved as UTF-8`;
    throw new InvalidInputError(`${name}:${line}:${column}: ${message}`, [
      { file: name, path: `line ${line}, column ${column}`, message },
    ]);
  }
  return text.replace(/^\uFEFF/, '');
}

/** Byte offset of the first byte that is not valid UTF-8, or undefined; `text` is `bytes` decoded with replacement. */
function firstInvalidUtf8(bytes: Buffer, text: string): number | undefined {
  // Each U+FFFD the decoder put in is either in the file (EF BF BD) or replaces an invalid sequence; the
  // text before it has the same length in bytes as the file before it.
  for (let i = text.indexOf('\uFFFD'); i >= 0; i = text.indexOf('\uFFFD', i + 1)) {
    const at = Buffer.byteLength(text.slice(0, i));
    if (!(bytes[at] === 0xef && bytes[at + 1] === 0xbf && bytes[at + 2] === 0xbd)) return at;
  }
  return undefined;
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
  if (problems.length)
    throw new InvalidInputError(`${file}: the document is outside the limits clover-cd reads`, problems);
}

/** Parse YAML (JSON is YAML too) with bounded depth and aliases; syntax errors name the line and column. */
export function parseYamlText(
  text: string,
  file: string,
  limits: StructureLimits = DOCUMENT_LIMITS,
  format: 'YAML' | 'JSON' = 'YAML',
): unknown {
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: file, maxDepth: limits.maxDepth, maxAliases: 1000 });
  } catch (err) {
    const e = err as {
      mark?: { line: number; column: number; position: number };
      reason?: string;
      message: string;
    };
    const where = e.mark ? `${file}:${e.mark.line + 1}:${e.mark.column + 1}` : file;
    let reason = (e.reason ?? e.message.split('\n')[0]).replace(/\s*\(\d+:\d+\)$/, '');
    if (reason === 'duplicated mapping key' && e.mark)
      reason = `duplicated mapping key ${JSON.stringify(keyAt(text, e.mark.position))}: each key may appear once in a mapping`;
    throw new InvalidInputError(`${where}: not valid ${format}: ${reason}`, [
      {
        file,
        path: e.mark ? `line ${e.mark.line + 1}, column ${e.mark.column + 1}` : '',
        message: `expected valid ${format}: ${reason}`,
      },
    ]);
  }
  checkBounds(doc, file, limits);
  return doc;
}

/** The mapping key js-yaml's mark points at: a quoted key from its opening quote, a plain one up to ":". */
function keyAt(text: string, position: number): string {
  const from = text.slice(position - 1);
  try {
    if (from[0] === '"')
      return (JSON.parse(/^"(?:[^"\\]|\\.)*"/.exec(from)?.[0] ?? '') as string).slice(0, 80);
  } catch {
    /* a YAML-only escape: the plain text below */
  }
  if (from[0] === "'") return (/^'((?:[^']|'')*)'/.exec(from)?.[1] ?? '').replace(/''/g, "'").slice(0, 80);
  return (/^[^:\n,{}]*/.exec(from.slice(1))?.[0] ?? '').trim().slice(0, 80);
}

/** Parse JSON; syntax errors name the line and column; the document's bounds are checked. */
export function parseJsonText(
  text: string,
  file: string,
  limits: StructureLimits = DOCUMENT_LIMITS,
): unknown {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const pos = jsonErrorOffset(text);
    const at = pos === undefined ? undefined : lineCol(text, pos);
    // V8 quotes the whole text in some messages ("Unexpected token ']', "…" is not valid JSON"): keep the reason only.
    let reason = msg
      .replace(/^.*?(Unexpected|Expected|Bad)/, '$1')
      .replace(/ in JSON at position \d+.*$/, '')
      .replace(/\s*\(line \d+ column \d+\)$/, '')
      .replace(/, "[^]*" is not valid JSON$/, '');
    if (pos !== undefined && /,\s*$/.test(text.slice(0, pos)) && /^[}\]]/.test(text.slice(pos)))
      reason = 'a comma before the closing bracket (JSON allows no trailing comma)';
    throw new InvalidInputError(`${file}${at ? `:${at}` : ''}: not valid JSON: ${reason}`, [
      {
        file,
        path: at ? `line ${at.replace(':', ', column ')}` : '',
        message: `expected valid JSON: ${reason}`,
      },
    ]);
  }
  checkBounds(doc, file, limits);
  return doc;
}

/** Read and parse a YAML or JSON file (or stdin for "-") through the bounds above. */
export function readDocument(
  file: string,
  opts: ReadLimits & { json?: boolean; structure?: StructureLimits },
): unknown {
  const text = readInputText(file, opts);
  const name = file === STDIN ? 'stdin' : file;
  if (opts.json) return parseJsonText(text, name, opts.structure);
  // A .json file is JSON: YAML's flow style would also take what JSON refuses (a trailing comma, single
  // quotes, unquoted keys, comments). The YAML parse then reads it as before (duplicate keys are refused).
  if (!/\.json$/i.test(name)) return parseYamlText(text, name, opts.structure);
  parseJsonText(text, name, opts.structure);
  return parseYamlText(text, name, opts.structure, 'JSON');
}
