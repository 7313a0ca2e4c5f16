// Whether dist/ was built from the sources as they are now: no source file or folder (a deletion changes its
// folder) and no tsconfig is newer than dist/.build-stamp, which holds the time the build STARTED. Read by the
// launcher (bin/clover-cd.js: run dist, or the sources through tsx) and by the build (nothing to do).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

/** True when a file or folder under dir is newer than t. */
function newerThan(dir, t) {
  if (statSync(dir).mtimeMs > t) return true;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory() ? newerThan(p, t) : statSync(p).mtimeMs > t) return true;
  }
  return false;
}

/** An installed package ships dist/ without src/: its dist is what there is. */
export function distIsFresh() {
  const stamp = `${root}dist/.build-stamp`;
  if (!existsSync(stamp)) return false;
  if (!existsSync(`${root}src`)) return true;
  const built = statSync(stamp).mtimeMs;
  const configs = ['tsconfig.json', 'tsconfig.build.json'].map((f) => `${root}${f}`).filter(existsSync);
  return !newerThan(`${root}src`, built) && !configs.some((f) => statSync(f).mtimeMs > built);
}
