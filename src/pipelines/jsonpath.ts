/**
 * Syntax of the JsonPath expressions a webhook stage gives Orca (statusJsonPath, statusUrlJsonPath,
 * progressJsonPath). Orca compiles them with Jayway JsonPath when the stage runs: a path that does not
 * compile fails the stage after the webhook was already called. Checked here: brackets, parentheses and
 * quotes close, no empty bracket, no trailing dot. A path holding `${...}` is SpEL and is not checked.
 */
export function jsonPathProblem(path: string): string | undefined {
  if (path.includes('${')) return undefined;
  const text = path.trim();
  if (text === '') return 'expected a JsonPath such as $.status, found an empty string';
  const found = `found "${text.length > 60 ? text.slice(0, 57) + '...' : text}"`;
  const closers: string[] = [];
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if (c === '[') {
      // Outside a filter, a bracket holds a name, an index, a slice or a wildcard: never another bracket.
      if (closers.length && !closers.includes(')'))
        return `expected a JsonPath such as $.status or $['status'], ${found}: "[" inside "[...]" at character ${i + 1}`;
      if (text[i + 1] === ']')
        return `expected a JsonPath such as $.items[0], ${found}: empty "[]" at character ${i + 1}`;
      closers.push(']');
    } else if (c === '(') closers.push(')');
    else if (c === ']' || c === ')') {
      if (closers.pop() !== c)
        return `expected a JsonPath with balanced brackets, ${found}: unexpected "${c}" at character ${i + 1}`;
    }
  }
  if (quote) return `expected a JsonPath with closed quotes, ${found}: the quote ${quote} is not closed`;
  if (closers.length)
    return `expected a JsonPath with balanced brackets, ${found}: "${closers[closers.length - 1]}" is missing`;
  if (/\.$/.test(text) && !/\.\.$/.test(text))
    return `expected a JsonPath such as $.status, ${found}: it ends with "."`;
  if (/\.\.\.|\.\.$/.test(text))
    return `expected a JsonPath such as $..status, ${found}: ".." needs a name after it`;
  return undefined;
}
