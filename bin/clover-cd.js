#!/usr/bin/env node
// Runs the compiled dist/ whenever it is at least as new as the sources. In a checkout, a source file or
// folder changed after the build started (dist/.build-stamp, written by scripts/build.mjs) means dist is
// stale: the TypeScript sources then run through tsx (a devDependency), so a checkout never runs a stale
// build and needs no build step. An installed package ships dist/ only and always runs it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { distIsFresh } from './dist-fresh.js';

const srcDir = fileURLToPath(new URL('../src/', import.meta.url));
const compiled = new URL('../dist/cli/main.js', import.meta.url);

if (distIsFresh()) {
  await import(compiled.href);
} else if (existsSync(srcDir)) {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write(
      'error: dist/ is missing or older than src/, and tsx (a devDependency) is not installed: run `npm run build` or `npm install`\n',
    );
    process.exit(4);
  }
  register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
} else {
  process.stderr.write(
    'error: this clover-cd package has no dist/: reinstall it, or run `npm run build` in its checkout\n',
  );
  process.exit(4);
}
