/**
 * The parts of Spinnaker's SpEL handling the validator needs: finding `${...}` expressions in strings and
 * the stage references inside them (`#stage('X')`, `#judgment('X')`, `#stageByRefId('3')`).
 */
export interface StageReference {
  fn: 'stage' | 'judgment' | 'stageByRefId';
  target: string;
}

const REF = /#(stage|judgment|judgement|stageByRefId)\(\s*(['"])((?:(?!\2).)*)\2\s*\)/g;

/** Literal stage references in an expression (dynamic arguments such as `#stage(name)` are not followed). */
export function stageReferences(text: string): StageReference[] {
  const out: StageReference[] = [];
  for (const m of text.matchAll(REF)) {
    const fn = m[1] === 'judgement' ? 'judgment' : (m[1] as StageReference['fn']);
    out.push({ fn, target: m[3] });
  }
  return out;
}

export function containsExpression(text: string): boolean {
  return text.includes('${');
}

/** Whether a whole string is exactly one `${...}` (Orca then substitutes the typed result). */
export function isWholeExpression(text: string): boolean {
  return /^\$\{[^]*\}$/.test(text.trim()) && text.indexOf('${', 2) === -1;
}

/**
 * Problems with `${...}` syntax in one string: unterminated expressions and nested `${` (Orca does not
 * nest). Braces inside an expression (map literals, `{1,2}`) are counted so they do not end it early.
 */
export function expressionSyntaxProblems(text: string): string[] {
  const problems: string[] = [];
  let i = text.indexOf('${');
  while (i !== -1) {
    let depth = 0;
    let end = -1;
    let quote: string | undefined;
    for (let j = i + 1; j < text.length; j++) {
      const c = text[j];
      if (quote) {
        if (c === quote) quote = undefined;
        continue;
      }
      if (c === "'" || c === '"') quote = c;
      else if (c === '{') depth++;
      else if (c === '}') {
        depth--;
        if (depth === 0) {
          end = j;
          break;
        }
      } else if (c === '$' && text[j + 1] === '{' && depth > 0) {
        problems.push(
          `nested "\${" inside an expression at offset ${j}: Orca does not evaluate nested expressions`,
        );
      }
    }
    if (end === -1) {
      problems.push(`unterminated expression starting at offset ${i}: Orca leaves it as literal text`);
      break;
    }
    i = text.indexOf('${', end + 1);
  }
  return problems;
}

/** Every string inside a JSON value, with its path relative to the value. */
export function* stringsIn(value: unknown, path = ''): Generator<[string, string]> {
  if (typeof value === 'string') yield [path, value];
  else if (Array.isArray(value))
    for (let i = 0; i < value.length; i++) yield* stringsIn(value[i], `${path}[${i}]`);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) yield* stringsIn(v, path ? `${path}.${k}` : k);
  }
}
