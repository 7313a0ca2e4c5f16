/**
 * One statement of the layout: architecture/modules.mjs is the table ESLint builds its import rules from; the
 * README's chain, ARCHITECTURE.md and every module README are generated from it and must not drift; no import
 * cycle, no long file without its reason, no comment citing a document the repository does not hold.
 */
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
// @ts-expect-error: a plain ES module of the repository's scripts, without type declarations
import * as arch from '../scripts/architecture.mjs';
// @ts-expect-error: as above
import { MODULES } from '../architecture/modules.mjs';

describe('the module direction, stated once', () => {
  it('every folder under src/ is a module of the table, and every module of the table a folder', () => {
    const folders = readdirSync('src').filter((f) => statSync(`src/${f}`).isDirectory());
    expect(folders.sort()).toEqual(MODULES.map((m: { name: string }) => m.name).sort());
  });

  it('README.md, ARCHITECTURE.md and each module README say what the table says', () => {
    expect(arch.staleParts()).toEqual([]);
    expect(readFileSync('README.md', 'utf8')).toContain(arch.chain());
  });

  it('ESLint forbids exactly what the table does not allow', async () => {
    // @ts-expect-error: the ESLint config is plain JavaScript
    const config = (await import('../eslint.config.js')).default as Array<{
      files?: string[];
      rules?: Record<string, unknown>;
    }>;
    for (const m of MODULES as Array<{ name: string }>) {
      const entry = config.find((c) => c.files?.[0] === `src/${m.name}/**/*.ts`);
      const patterns = (
        entry?.rules?.['no-restricted-imports'] as [string, { patterns: Array<{ group: string[] }> }]
      )[1].patterns;
      const banned = patterns.map((p) => p.group[0].replace(/^\*\*\/(.*)\/\*\*$/, '$1')).sort();
      expect({ module: m.name, banned }).toEqual({
        module: m.name,
        banned: [...arch.forbidden()[m.name]].sort(),
      });
    }
  });

  it('the table itself catches a module that imports upwards', () => {
    const bad = [
      { name: 'a', owns: '', imports: ['b'] },
      { name: 'b', owns: '', imports: ['a'] },
    ];
    expect(() => arch.moduleLevels(bad)).toThrow(/cycle a → b → a/);
  });
});

describe('rooms of a readable size', () => {
  it('no import cycle between source files', () => {
    expect(arch.importCycles()).toEqual([]);
  });

  it('no source file over 400 lines without a reason at its top', () => {
    expect(arch.longFiles().filter((f: { reason: boolean }) => !f.reason)).toEqual([]);
  });

  it('no comment cites a document that is not in the repository', () => {
    expect(arch.missingCitations()).toEqual([]);
  });
});
