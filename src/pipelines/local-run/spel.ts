/**
 * The subset of Spinnaker's SpEL that generated pipelines use, evaluated for local runs:
 * literals, `execution` / `trigger` / `parameters` / stage outputs, `.prop` and `['key']` access,
 * `.toString()`, `#stage(name)`, `#stageByRefId(id)`, `#stageExists(name)`, `#judgment(name)`,
 * `== != < <= > >=`, `&& || !` (and `and or not`), `?:` and parentheses. Anything else is an error
 * (what Orca does with failOnFailedExpressions), never a guess.
 */
export interface SpelContext {
  /** Top-level variables: execution, trigger, parameters, and upstream stage outputs. */
  vars: Record<string, unknown>;
  stage(nameOrId: string): Record<string, unknown> | undefined;
  stageByRefId(refId: string): Record<string, unknown> | undefined;
  judgment(name: string): string | undefined;
}

export class SpelError extends Error {}

type Tok = { t: 'str' | 'num' | 'id' | 'fn' | 'op'; v: string };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      let s = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new SpelError(`unterminated string in "${src}"`);
        if (src[i] === c && src[i + 1] === c) {
          s += c;
          i += 2;
        } else if (src[i] === c) {
          i++;
          break;
        } else s += src[i++];
      }
      out.push({ t: 'str', v: s });
      continue;
    }
    const num = /^\d+(\.\d+)?/.exec(src.slice(i));
    if (num) {
      out.push({ t: 'num', v: num[0] });
      i += num[0].length;
      continue;
    }
    const id = /^#?[A-Za-z_$][\w$]*/.exec(src.slice(i));
    if (id) {
      out.push({ t: id[0].startsWith('#') ? 'fn' : 'id', v: id[0].replace(/^#/, '') });
      i += id[0].length;
      continue;
    }
    const op = /^(==|!=|<=|>=|&&|\|\||\?:|[<>!().[\],?:])/.exec(src.slice(i));
    if (!op) throw new SpelError(`unexpected "${c}" in "${src}"`);
    out.push({ t: 'op', v: op[0] });
    i += op[0].length;
  }
  return out;
}

function truthy(v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  throw new SpelError(`expected a boolean, found ${JSON.stringify(v)}`);
}

function equal(a: unknown, b: unknown): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return a == b;
  if (typeof a === 'object' || typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  if (typeof a === 'number' || typeof b === 'number') return Number(a) === Number(b);
  return String(a) === String(b);
}

export function evaluateSpel(expression: string, ctx: SpelContext): unknown {
  const toks = tokenize(expression);
  let p = 0;
  const peek = (v: string) => toks[p]?.t === 'op' && toks[p].v === v;
  const eat = (v: string) => {
    if (toks[p]?.v !== v) throw new SpelError(`expected "${v}" at token ${p + 1} of "${expression}"`);
    p++;
  };
  const word = (w: string) => toks[p]?.t === 'id' && toks[p].v.toLowerCase() === w;

  function ternary(): unknown {
    const cond = or();
    if (peek('?:')) {
      p++;
      const alt = ternary();
      return cond === null || cond === undefined || cond === '' ? alt : cond;
    }
    if (peek('?')) {
      p++;
      const a = ternary();
      eat(':');
      const b = ternary();
      return truthy(cond) ? a : b;
    }
    return cond;
  }
  function or(): unknown {
    let left = and();
    while (peek('||') || word('or')) {
      p++;
      const right = and();
      left = truthy(left) || truthy(right);
    }
    return left;
  }
  function and(): unknown {
    let left = not();
    while (peek('&&') || word('and')) {
      p++;
      const right = not();
      left = truthy(left) && truthy(right);
    }
    return left;
  }
  function not(): unknown {
    if (peek('!') || word('not')) {
      p++;
      return !truthy(not());
    }
    return compare();
  }
  function compare(): unknown {
    const left = postfix();
    const op =
      toks[p]?.t === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(toks[p].v) ? toks[p++].v : undefined;
    if (!op) return left;
    const right = postfix();
    switch (op) {
      case '==':
        return equal(left, right);
      case '!=':
        return !equal(left, right);
      case '<':
        return Number(left) < Number(right);
      case '<=':
        return Number(left) <= Number(right);
      case '>':
        return Number(left) > Number(right);
      default:
        return Number(left) >= Number(right);
    }
  }
  function args(): unknown[] {
    eat('(');
    const out: unknown[] = [];
    while (!peek(')')) {
      out.push(ternary());
      if (peek(',')) p++;
      else break;
    }
    eat(')');
    return out;
  }
  function primary(): unknown {
    const t = toks[p++];
    if (!t) throw new SpelError(`unexpected end of "${expression}"`);
    if (t.t === 'str') return t.v;
    if (t.t === 'num') return Number(t.v);
    if (t.t === 'op' && t.v === '(') {
      const v = ternary();
      eat(')');
      return v;
    }
    if (t.t === 'fn') {
      const a = args();
      switch (t.v) {
        case 'stage': {
          const s = ctx.stage(String(a[0]));
          if (!s) throw new SpelError(`#stage('${a[0]}'): no such stage`);
          return s;
        }
        case 'stageByRefId': {
          const s = ctx.stageByRefId(String(a[0]));
          if (!s) throw new SpelError(`#stageByRefId('${a[0]}'): no such stage`);
          return s;
        }
        case 'stageExists':
          return ctx.stage(String(a[0])) !== undefined;
        case 'judgment':
        case 'judgement': {
          const j = ctx.judgment(String(a[0]));
          if (j === undefined) throw new SpelError(`#judgment('${a[0]}'): no judgment was made`);
          return j;
        }
        case 'toInt':
          return Math.trunc(Number(a[0]));
        case 'toBoolean':
          return truthy(a[0]);
        default:
          throw new SpelError(`#${t.v}(...) is not supported by local runs`);
      }
    }
    if (t.t === 'id') {
      if (t.v === 'true' || t.v === 'false') return t.v === 'true';
      if (t.v === 'null') return null;
      if (!(t.v in ctx.vars)) throw new SpelError(`unknown variable "${t.v}"`);
      return ctx.vars[t.v];
    }
    throw new SpelError(`unexpected "${t.v}" in "${expression}"`);
  }
  function postfix(): unknown {
    let v = primary();
    for (;;) {
      if (peek('[')) {
        p++;
        const key = ternary();
        eat(']');
        v = index(v, key);
      } else if (peek('.')) {
        p++;
        const name = toks[p++];
        if (name?.t !== 'id') throw new SpelError(`expected a property name after "." in "${expression}"`);
        if (peek('(')) {
          args();
          if (name.v !== 'toString') throw new SpelError(`method ${name.v}() is not supported by local runs`);
          v = v === null || v === undefined ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
        } else v = index(v, name.v);
      } else return v;
    }
  }
  function index(v: unknown, key: unknown): unknown {
    if (v === null || v === undefined || typeof v !== 'object')
      throw new SpelError(`cannot read [${JSON.stringify(key)}] of ${JSON.stringify(v)}`);
    return (v as Record<string, unknown>)[String(key)];
  }

  const value = ternary();
  if (p !== toks.length) throw new SpelError(`unexpected "${toks[p].v}" in "${expression}"`);
  return value;
}

/** A stageEnabled / precondition expression: bare or `${...}`-wrapped; the result must be a boolean. */
export function evaluateCondition(expression: string, ctx: SpelContext): boolean {
  const m = /^\s*\$\{([^]*)\}\s*$/.exec(expression);
  return truthy(evaluateSpel(m ? m[1] : expression, ctx));
}

/**
 * Evaluate every `${...}` in a stage's strings, deeply. A string that is exactly one expression takes the
 * typed result; mixed text gets the string form. `failures` collects expressions that did not evaluate.
 */
export function resolveExpressions<T>(value: T, ctx: SpelContext, failures: string[] = []): T {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    const whole = /^\$\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}$/.exec(value);
    try {
      if (whole) return evaluateSpel(whole[1], ctx) as T;
      return value.replace(/\$\{([^{}]*)\}/g, (_m, expr: string) => {
        const v = evaluateSpel(expr, ctx);
        return typeof v === 'object' ? JSON.stringify(v) : String(v);
      }) as T;
    } catch (err) {
      failures.push(`${value}: ${(err as Error).message}`);
      return value;
    }
  }
  if (Array.isArray(value)) return value.map((v) => resolveExpressions(v, ctx, failures)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, resolveExpressions(v, ctx, failures)]),
    ) as T;
  }
  return value;
}
