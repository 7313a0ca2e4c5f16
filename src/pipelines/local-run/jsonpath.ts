/**
 * The JsonPath subset webhook stages use: `$.a.b`, `$.a[0]`, `$['a']['b']`. Returns `found: false` when a
 * segment is missing (Orca then ends the stage TERMINAL).
 */
export function readJsonPath(doc: unknown, path: string): { found: boolean; value?: unknown } {
  const p = path.trim();
  if (!p.startsWith('$')) throw new RangeError(`not a JsonPath: "${path}" (expected it to start with "$")`);
  const segments: Array<string | number> = [];
  const re = /\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\]/gy;
  re.lastIndex = 1;
  while (re.lastIndex < p.length) {
    const m = re.exec(p);
    if (!m) throw new RangeError(`unsupported JsonPath "${path}" at position ${re.lastIndex}`);
    segments.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : (m[3] ?? m[4])));
  }
  let cur: unknown = doc;
  for (const s of segments) {
    if (cur === null || typeof cur !== 'object' || !(s in (cur as object))) return { found: false };
    cur = (cur as Record<string | number, unknown>)[s];
  }
  return { found: true, value: cur };
}
