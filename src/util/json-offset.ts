/**
 * Where a text stops being JSON. V8's JSON.parse names a position for some errors ("... in JSON at
 * position 7") but not for others ("Unexpected token ']', "[1,]" is not valid JSON"), so messages that
 * must name a line and column find it here: one linear pass over the grammar (RFC 8259), no recursion.
 */
type Expect = 'value' | 'valueOrEnd' | 'key' | 'keyOrEnd' | 'colon' | 'commaOrEnd' | 'done';

/** Offset just past the string starting at `i` (a quote), or the negated offset + 1 of its first bad character. */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x22) return j + 1;
    if (c < 0x20) return -(j + 1);
    if (c === 0x5c) {
      j++;
      if (text[j] === 'u') {
        for (let k = 1; k <= 4; k++) if (!/[0-9a-fA-F]/.test(text[j + k] ?? '')) return -(j + k + 1);
        j += 4;
      } else if (!'"\\/bfnrt'.includes(text[j] ?? 'x')) return -(j + 1);
    }
  }
  return -(text.length + 1);
}

/** Offset just past the number at `i`, or the negated offset + 1 of the character a digit was expected at. */
function numberEnd(text: string, i: number): number {
  let j = i;
  const digits = () => {
    const from = j;
    while (j < text.length && text[j] >= '0' && text[j] <= '9') j++;
    return j > from;
  };
  if (text[j] === '-') j++;
  if (text[j] === '0') j++;
  else if (!digits()) return -(j + 1);
  if (text[j] === '.') {
    j++;
    if (!digits()) return -(j + 1);
  }
  if (text[j] === 'e' || text[j] === 'E') {
    j++;
    if (text[j] === '+' || text[j] === '-') j++;
    if (!digits()) return -(j + 1);
  }
  return j;
}

/** Offset just past the number, string or literal at `i`, or the negated offset + 1 where it goes wrong. */
function scalarEnd(text: string, i: number): number {
  if (text[i] === '"') return stringEnd(text, i);
  const literal = { t: 'true', f: 'false', n: 'null' }[text[i]];
  if (!literal) return numberEnd(text, i);
  for (let k = 1; k < literal.length; k++) if (text[i + k] !== literal[k]) return -(i + k + 1);
  return i + literal.length;
}

/** Offset of the first character where `text` is not JSON (its length when the text ends too early); undefined for JSON. */
export function jsonErrorOffset(text: string): number | undefined {
  const stack: string[] = [];
  let expect: Expect = 'value';
  let i = 0;
  const after = (): Expect => (stack.length ? 'commaOrEnd' : 'done');
  for (;;) {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r'))
      i++;
    if (i >= text.length) return expect === 'done' ? undefined : i;
    const c = text[i];
    if (expect === 'done') return i;
    if (expect === 'colon') {
      if (c !== ':') return i;
      i++;
      expect = 'value';
    } else if (expect === 'commaOrEnd') {
      const top = stack[stack.length - 1];
      if (c === ',') expect = top === '{' ? 'key' : 'value';
      else if ((c === '}' && top === '{') || (c === ']' && top === '[')) {
        stack.pop();
        expect = after();
      } else return i;
      i++;
    } else if ((expect === 'keyOrEnd' && c === '}') || (expect === 'valueOrEnd' && c === ']')) {
      stack.pop();
      i++;
      expect = after();
    } else if (expect === 'key' || expect === 'keyOrEnd') {
      if (c !== '"') return i;
      const end = stringEnd(text, i);
      if (end < 0) return -end - 1;
      i = end;
      expect = 'colon';
    } else if (c === '{' || c === '[') {
      stack.push(c);
      i++;
      expect = c === '{' ? 'keyOrEnd' : 'valueOrEnd';
    } else {
      const end = scalarEnd(text, i);
      if (end < 0) return -end - 1;
      i = end;
      expect = after();
    }
  }
}
