#!/usr/bin/env node
// `npm run build` (also `prepare`, so `npm ci` and `npm pack` build): compiles src/ into dist/ with the same
// relative layout (dist/cli/main.js ↔ src/cli/main.ts), so every `new URL('../../x', import.meta.url)` in the
// sources resolves to the same package file from both. Copies the files the compiled code reads at run time
// (JMeter launcher .java, gRPC .proto, clovisor BPF C sources) beside it, and writes dist/.build-stamp with the
// time the build STARTED: bin/clover-cd.js runs dist only when no source is newer than that stamp, so a source
// edited during the build still counts as newer.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { distIsFresh } from '../bin/dist-fresh.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const dist = join(root, 'dist');
const started = new Date();

// Nothing changed since the last build (`npm ci` built it; `npm pack` runs prepare again): keep dist/ as it is,
// so a pack does not delete the dist/ that running clover-cd processes load. --force rebuilds regardless.
if (!process.argv.includes('--force') && distIsFresh()) {
  process.stderr.write('build: dist/ is up to date with src/ (--force rebuilds)\n');
  process.exit(0);
}

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
// Emit only: `npm run typecheck` (and the test command) checks the types of src/, test/ and bench/ at once; checking
// src/ here too doubled the build's time.
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--noCheck'], {
  stdio: 'inherit',
  cwd: root,
});

/** Files the compiled code opens at run time: everything under src/ that is neither TypeScript nor a README. */
let copied = 0;
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (!/\.ts$/.test(e.name) && e.name !== 'README.md') {
      const to = join(dist, relative(src, p));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(p, to);
      copied++;
    }
  }
};
walk(src);

// The schemas every spec-reading command validates against, compiled now rather than in each process (see
// src/util/schema.ts). A schema left out here still works: it is compiled when first used.
const load = async (file, ...names) => {
  const mod = await import(pathToFileURL(join(dist, file)).href);
  return names.map((name) => {
    if (!mod[name]) throw new Error(`build: ${file} no longer exports ${name}: update scripts/build.mjs`);
    return mod[name];
  });
};
const [releaseSpecSchema, triggerSchemas] = await load(
  'spec/schema.js',
  'releaseSpecSchema',
  'triggerSchemas',
);
const [gateRuleSchemas] = await load('spec/gate-schema.js', 'gateRuleSchemas');
const [cloverPlanSchema] = await load('spec/load-plan-schema.js', 'cloverPlanSchema');
const [bundleSchema] = await load('validators/bundle-schema.js', 'bundleSchema');
const [precompiledModule] = await load('util/schema-precompile.js', 'precompiledModule');
const schemas = [
  releaseSpecSchema,
  ...Object.values(triggerSchemas),
  ...Object.values(gateRuleSchemas),
  cloverPlanSchema,
  bundleSchema,
];
writeFileSync(join(dist, 'util/schema-validators.cjs'), precompiledModule(schemas));

const stamp = join(dist, '.build-stamp');
writeFileSync(stamp, `${started.toISOString()}\n`);
utimesSync(stamp, started, started);
process.stderr.write(
  `build: dist/ compiled, ${copied} asset file(s) copied, ${schemas.length} schema validator(s) precompiled\n`,
);
