import type { InputProblem } from './errors.js';

/**
 * Bounds every parsed document is checked against before any validator walks it: nesting depth, the
 * number of values once YAML aliases are expanded (a "billion laughs" document is small on disk and huge
 * in memory), values that contain themselves (`a: &a [*a]`), and string length. Iterative, so a document
 * nested 100,000 deep is reported, not a stack overflow.
 */
export interface StructureLimits {
  /** Deepest nesting of objects and arrays (the root is depth 0). */
  maxDepth: number;
  /** Values counted with every alias expanded. */
  maxValues: number;
  /** Longest string value or key, in characters. */
  maxString: number;
}

export const DOCUMENT_LIMITS: StructureLimits = { maxDepth: 64, maxValues: 200_000, maxString: 1_000_000 };

const seg = (path: string, key: string | number): string =>
  typeof key === 'number'
    ? `${path}[${key}]`
    : /^[A-Za-z_$][\w$-]*$/.test(key)
      ? path
        ? `${path}.${key}`
        : key
      : `${path}[${JSON.stringify(key)}]`;

/** Every bound the document breaks (at most one problem per kind, with the first path where it happens). */
export function structureProblems(
  doc: unknown,
  file?: string,
  limits: StructureLimits = DOCUMENT_LIMITS,
): InputProblem[] {
  const problems: InputProblem[] = [];
  const reported = new Set<string>();
  const report = (kind: string, path: string, message: string) => {
    if (reported.has(kind)) return;
    reported.add(kind);
    problems.push({
      file,
      path: path.length > 160 ? `${path.slice(0, 70)}...${path.slice(-70)}` : path,
      message,
    });
  };
  // Explicit stack of frames; `open` holds the containers on the current path, to find self-reference.
  type Frame = { value: unknown; path: string; depth: number; exit?: object };
  const stack: Frame[] = [{ value: doc, path: '', depth: 0 }];
  const open = new Set<object>();
  let values = 0;
  while (stack.length) {
    const f = stack.pop()!;
    if (f.exit) {
      open.delete(f.exit);
      continue;
    }
    if (++values > limits.maxValues) {
      report(
        'size',
        f.path,
        `the document holds more than ${limits.maxValues.toLocaleString('en')} values once YAML aliases are expanded; expected a smaller document (is an anchor repeated many times?)`,
      );
      break;
    }
    const v = f.value;
    if (typeof v === 'string') {
      if (v.length > limits.maxString)
        report(
          'string',
          f.path,
          `a text of ${v.length.toLocaleString('en')} characters; expected at most ${limits.maxString.toLocaleString('en')}`,
        );
      continue;
    }
    if (typeof v === 'number' && !Number.isFinite(v)) {
      report(`number:${f.path}`, f.path, `expected a finite number, found ${String(v)}`);
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (open.has(v)) {
      report(
        'cycle',
        f.path,
        'this value contains itself (a YAML alias inside its own anchor, e.g. `a: &x [*x]`); expected a finite tree',
      );
      continue;
    }
    if (f.depth >= limits.maxDepth) {
      report('depth', f.path, `nested more than ${limits.maxDepth} levels deep; expected a flatter document`);
      continue;
    }
    open.add(v);
    stack.push({ value: undefined, path: f.path, depth: f.depth, exit: v });
    const entries: Array<[string | number, unknown]> = Array.isArray(v)
      ? v.map((x, i) => [i, x])
      : Object.entries(v);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, x] = entries[i];
      if (typeof k === 'string' && k.length > limits.maxString)
        report(
          'string',
          f.path,
          `a key of ${k.length.toLocaleString('en')} characters; expected at most ${limits.maxString.toLocaleString('en')}`,
        );
      stack.push({ value: x, path: seg(f.path, k), depth: f.depth + 1 });
    }
  }
  return problems;
}
