#!/usr/bin/env node
// The layout, measured and stated from one table (architecture/modules.mjs).
//   node scripts/architecture.mjs            figures: files over 400 lines, largest functions, import cycles
//   node scripts/architecture.mjs --write    rewrite the generated parts of ARCHITECTURE.md, README.md and
//                                            every module README from the table
//   node scripts/architecture.mjs --check    exit 1 when a generated part is stale, an import cycle exists, a
//                                            file over 400 lines gives no reason, or a comment cites a missing file
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODULES } from '../architecture/modules.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');
export const MAX_LINES = 400;
/** A file over MAX_LINES says why in a comment of this form within its first lines. */
export const LONG_FILE_REASON = /^\/\/ (?:Over|Longer than) 400 lines: \S/m;

/** Level of each module: 0 for one that imports nothing, else one above the highest module it may import. */
export function moduleLevels(modules = MODULES) {
  const byName = new Map(modules.map((m) => [m.name, m]));
  const level = new Map();
  const visit = (name, path = []) => {
    if (level.has(name)) return level.get(name);
    if (path.includes(name))
      throw new Error(`architecture/modules.mjs: the table has a cycle ${[...path, name].join(' → ')}`);
    const m = byName.get(name);
    if (!m) throw new Error(`architecture/modules.mjs: "${path.at(-1)}" imports unknown module "${name}"`);
    const l = m.imports.length ? 1 + Math.max(...m.imports.map((i) => visit(i, [...path, name]))) : 0;
    level.set(name, l);
    return l;
  };
  for (const m of modules) visit(m.name);
  return level;
}

/** The chain, top to bottom: `cli → stages → {reports, routers} → … → util`. */
export function chain(modules = MODULES) {
  const level = moduleLevels(modules);
  const groups = new Map();
  for (const [name, l] of level) groups.set(l, [...(groups.get(l) ?? []), name]);
  return [...groups.keys()]
    .sort((a, b) => b - a)
    .map((l) => {
      const names = groups.get(l).sort();
      return names.length === 1 ? names[0] : `{${names.join(', ')}}`;
    })
    .join(' → ');
}

/** Modules each module must not import: every other module it does not list. */
export function forbidden(modules = MODULES) {
  return Object.fromEntries(
    modules.map((m) => [
      m.name,
      modules.map((o) => o.name).filter((o) => o !== m.name && !m.imports.includes(o)),
    ]),
  );
}

const code = (names) => (names.length ? names.map((n) => `\`${n}/\``).join(', ') : 'nothing of ours');

function architectureTable(modules = MODULES) {
  const level = moduleLevels(modules);
  const rows = [...modules]
    .sort((a, b) => level.get(b.name) - level.get(a.name))
    .map((m) => `| \`${m.name}/\` | ${level.get(m.name)} | ${m.owns} | ${code(m.imports)} |`);
  return ['| module | layer | owns | may import |', '|---|---|---|---|', ...rows].join('\n');
}

function moduleImportLine(m) {
  const banned = forbidden()[m.name];
  return (
    `May import ${code(m.imports)}; must not import ${banned.length ? code(banned) : 'nothing'} ` +
    '(`architecture/modules.mjs`, enforced by ESLint).'
  );
}

/** Every generated part: file → marker → text. */
export function generatedParts() {
  const parts = [
    { file: 'ARCHITECTURE.md', marker: 'modules', text: architectureTable() },
    { file: 'ARCHITECTURE.md', marker: 'chain', text: '```\n' + chain() + '\n```' },
    { file: 'README.md', marker: 'chain', text: '```\n' + chain() + '\n```' },
  ];
  for (const m of MODULES)
    parts.push({ file: `src/${m.name}/README.md`, marker: 'imports', text: moduleImportLine(m) });
  return parts;
}

const markers = (marker) => [`<!-- generated:${marker} -->`, `<!-- /generated:${marker} -->`];

/** The file's text with the part replaced; undefined when the markers are missing. */
function withPart(text, { marker, text: part }) {
  const [open, close] = markers(marker);
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  if (a < 0 || b < a) return undefined;
  return text.slice(0, a + open.length) + '\n' + part + '\n' + text.slice(b);
}

export function staleParts() {
  const problems = [];
  for (const p of generatedParts()) {
    const path = join(ROOT, p.file);
    if (!existsSync(path)) {
      problems.push(`${p.file}: missing`);
      continue;
    }
    const text = readFileSync(path, 'utf8');
    const next = withPart(text, p);
    if (next === undefined) problems.push(`${p.file}: no ${markers(p.marker).join(' … ')} section`);
    else if (next !== text)
      problems.push(`${p.file}: the ${p.marker} section differs from architecture/modules.mjs`);
  }
  return problems;
}

function writeParts() {
  for (const p of generatedParts()) {
    const path = join(ROOT, p.file);
    const text = readFileSync(path, 'utf8');
    const next = withPart(text, p);
    if (next === undefined)
      throw new Error(`${p.file}: add ${markers(p.marker).join(' … ')} where the ${p.marker} go`);
    if (next !== text) writeFileSync(path, next);
  }
}

export function sourceFiles(dir = SRC) {
  const out = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s+(type\s+)?[^'";]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

/** Relative imports per file (type-only imports included: they couple files just the same). */
export function importGraph(files = sourceFiles()) {
  const graph = new Map();
  for (const f of files) {
    const targets = new Set();
    for (const m of readFileSync(f, 'utf8').matchAll(IMPORT)) {
      const spec = (m[2] ?? m[3]).replace(/\.js$/, '.ts');
      let t = resolve(dirname(f), spec);
      if (!t.endsWith('.ts')) t = existsSync(t + '.ts') ? t + '.ts' : join(t, 'index.ts');
      if (existsSync(t)) targets.add(t);
    }
    graph.set(f, targets);
  }
  return graph;
}

/** Strongly connected components of more than one file (Tarjan). */
export function importCycles(graph = importGraph()) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const cycles = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(relative(ROOT, w));
      } while (w !== v);
      if (comp.length > 1) cycles.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) strong(v);
  return cycles;
}

export function longFiles(files = sourceFiles()) {
  return files
    .map((f) => ({ file: relative(ROOT, f), text: readFileSync(f, 'utf8') }))
    .map(({ file, text }) => ({ file, lines: text.split('\n').length - (text.endsWith('\n') ? 1 : 0), text }))
    .filter((f) => f.lines > MAX_LINES)
    .map(({ file, lines, text }) => ({
      file,
      lines,
      reason: LONG_FILE_REASON.test(text.split('\n').slice(0, 8).join('\n')),
    }));
}

/** Comments that cite a document a reader of the repository cannot open. */
export const MISSING_CITATION = /reference §|§\s?\d|contract \[[A-Z]\]|\[[A-Z]\d*\]\s|brief §/;
export function missingCitations(files = sourceFiles()) {
  const hits = [];
  for (const f of files) {
    readFileSync(f, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const comment = line.match(/(\/\/.*|\/\*.*|^\s*\*.*)$/);
        if (comment && MISSING_CITATION.test(comment[0]))
          hits.push(`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
      });
  }
  return hits;
}

/** The longest functions (lines from declaration to closing brace), via the TypeScript parser. */
export async function largestFunctions(top = 5, files = sourceFiles()) {
  const ts = (await import('typescript')).default;
  const found = [];
  for (const f of files) {
    const sf = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node) => {
      if (ts.isFunctionLike(node) && node.body) {
        const a = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
        const b = sf.getLineAndCharacterOfPosition(node.end).line;
        const name = node.name?.getText(sf) ?? node.parent?.name?.getText?.(sf) ?? '(anonymous)';
        found.push({ where: `${relative(ROOT, f)}:${a + 1}`, name, lines: b - a + 1 });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return found.sort((x, y) => y.lines - x.lines).slice(0, top);
}

async function main(argv) {
  if (argv.includes('--write')) {
    writeParts();
    return 0;
  }
  const files = sourceFiles();
  const cycles = importCycles(importGraph(files));
  const long = longFiles(files);
  if (argv.includes('--check')) {
    const problems = [
      ...staleParts().map((p) => `${p} (run: node scripts/architecture.mjs --write)`),
      ...cycles.map((c) => `import cycle: ${c.join(' ↔ ')}`),
      ...long
        .filter((l) => !l.reason)
        .map((l) => `${l.file}: ${l.lines} lines and no "// Over 400 lines: <why>" at its top`),
      ...missingCitations(files).map((h) => `cites a document not in the repository: ${h}`),
    ];
    for (const p of problems) process.stderr.write(p + '\n');
    return problems.length ? 1 : 0;
  }
  const lines = files.map((f) => readFileSync(f, 'utf8').split('\n'));
  const out = [
    `source files: ${files.length}, lines: ${lines.reduce((n, l) => n + l.length - 1, 0)}`,
    `files over ${MAX_LINES} lines: ${long.length}${long.map((l) => `\n  ${l.file} ${l.lines}${l.reason ? ' (reason given)' : ''}`).join('')}`,
    `import cycles: ${cycles.length}${cycles.map((c) => `\n  ${c.join(' ↔ ')}`).join('')}`,
    `largest functions:${(await largestFunctions(5, files)).map((f) => `\n  ${f.lines} lines  ${f.name}  ${f.where}`).join('')}`,
    `comments citing missing documents: ${missingCitations(files).length}`,
  ];
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
