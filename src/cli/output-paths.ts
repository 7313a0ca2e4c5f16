import { accessSync, constants, statfsSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InvalidInputError, type InputProblem } from '../util/errors.js';

/**
 * Files a command will write (--properties, --junit, --html, --markdown, --results, -o file), checked
 * before the work starts: a load that runs for minutes and then cannot write its report has sent its
 * requests for nothing. A path is fine when it is not a directory, and either exists as a writable file or
 * can be created in a writable folder. `createsFolders` is for writers that create missing folders (the
 * properties file): then the nearest existing ancestor must be a writable folder.
 */
export interface OutputPath {
  flag: string;
  path: string | undefined;
  createsFolders?: boolean;
}

// Kernel filesystems where a root process passes access() checks yet cannot create files (and where
// Node's recursive mkdir loops forever on ENOENT).
const PSEUDO_FS = new Set([
  0x9fa0 /* proc */, 0x62656572 /* sysfs */, 0x63677270 /* cgroup2 */, 0x27e0eb /* cgroup */,
  0x64626720 /* debugfs */, 0x74726163 /* tracefs */,
]);

function statOf(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

function writable(p: string): boolean {
  try {
    accessSync(p, constants.W_OK);
    return !PSEUDO_FS.has(Number(statfsSync(p).type));
  } catch {
    return false;
  }
}

/** Why `path` cannot be written, or undefined. */
export function outputPathProblem(path: string, createsFolders = false): string | undefined {
  if (path.trim() === '') return 'expected a file path, found an empty string';
  const abs = resolve(path);
  const st = statOf(abs);
  if (st?.isDirectory()) return `${path} is a directory; expected a file path to write`;
  if (st)
    return st.isFile() || st.isCharacterDevice() || st.isFIFO()
      ? writable(abs)
        ? undefined
        : `${path} exists and is not writable`
      : `${path} is not a regular file`;
  let dir = dirname(abs);
  let missing = 0;
  for (;;) {
    const d = statOf(dir);
    if (d && !d.isDirectory()) return `${dir} is a file, so ${path} cannot be created under it`;
    if (d) break;
    missing++;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  if (missing && !createsFolders)
    return `the folder ${dirname(abs)} does not exist; create it first or write elsewhere`;
  if (!writable(dir)) return `cannot create ${path}: the folder ${dir} is not writable`;
  return undefined;
}

/** Throw exit 2 naming every output flag whose path cannot be written (and paths given twice). */
export function checkOutputPaths(paths: OutputPath[]): void {
  const problems: InputProblem[] = [];
  const seen = new Map<string, string>();
  for (const { flag, path, createsFolders } of paths) {
    if (path === undefined) continue;
    const msg = outputPathProblem(path, createsFolders);
    if (msg) problems.push({ path: flag, message: msg });
    const abs = resolve(path);
    const other = seen.get(abs);
    if (other && abs !== '/dev/null')
      problems.push({
        path: flag,
        message: `${path} is also the ${other} file; give each output its own file`,
      });
    else seen.set(abs, flag);
  }
  if (problems.length)
    throw new InvalidInputError(
      `cannot write ${problems.length === 1 ? 'an output file' : 'output files'}; nothing was run`,
      problems,
    );
}
