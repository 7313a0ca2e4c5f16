import { constants, promises as fs } from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';
import * as yaml from 'js-yaml';
import type { InputProblem } from '../util/errors.js';

/**
 * The only files a request can make the stage server read: documents by name from the directory the
 * operator configured (`serve --content-dir`). Names are relative, without `..`; the file must be a regular
 * file (no symbolic link, device, FIFO or directory) under the size limit, and inside the directory after
 * symbolic links in its folders are resolved. Errors name the file as the caller wrote it, never the
 * server's absolute path. Without a content directory the server reads nothing: plans and manifests come
 * inline in the request.
 */
export interface ContentDir {
  dir: string;
  /** Largest document read (default 256 KiB). */
  maxBytes?: number;
}

export const DEFAULT_CONTENT_MAX_BYTES = 256 * 1024;

/** Why a name is refused before any file system call, or undefined when it may be looked up. */
export function checkContentName(name: string): string | undefined {
  if (!name || name.length > 255) return 'expected a relative file name of 1-255 characters';
  if (name.includes('\0') || name.includes('\\')) return 'a file name must not contain NUL or "\\"';
  if (isAbsolute(name) || name.startsWith('/') || /^[a-z]:/i.test(name))
    return "an absolute path is not accepted: name a file of the server's content directory, or send the document inline";
  if (name.split('/').some((s) => s === '..' || s === '.'))
    return '"." and ".." are not accepted in a file name';
  if (name.split('/').some((s) => s === '')) return 'empty path segment';
  return undefined;
}

export class ContentError extends Error {}

/** Read `name` from the content directory as text; ContentError (caller-safe message) when it cannot. */
export async function readContent(content: ContentDir | undefined, name: string): Promise<string> {
  if (!content)
    throw new ContentError(
      'this server reads no files named by a request: send the document inline (or the operator sets serve --content-dir)',
    );
  const why = checkContentName(name);
  if (why) throw new ContentError(why);
  const max = content.maxBytes ?? DEFAULT_CONTENT_MAX_BYTES;
  const root = await fs.realpath(content.dir);
  let real: string;
  try {
    real = await fs.realpath(join(root, name));
  } catch {
    throw new ContentError(`"${name}" is not in the content directory`);
  }
  if (!real.startsWith(root + sep)) throw new ContentError(`"${name}" leads outside the content directory`);
  let fh: fs.FileHandle;
  try {
    // O_NOFOLLOW: a symbolic link swapped in after the check is refused; O_NONBLOCK: a FIFO never blocks the open.
    fh = await fs.open(join(root, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ContentError(
      code === 'ELOOP'
        ? `"${name}" is a symbolic link; name the file itself`
        : `"${name}" cannot be opened (${code ?? 'error'})`,
    );
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ContentError(`"${name}" is not a regular file`);
    if (st.size > max)
      throw new ContentError(`"${name}" is ${st.size} bytes, over the limit of ${max} bytes`);
    const buf = Buffer.alloc(Math.min(st.size, max) + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > max) throw new ContentError(`"${name}" is over the limit of ${max} bytes`);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Parse YAML (or JSON) from the content directory; every problem is reported at `path`. */
async function readDocuments(content: ContentDir | undefined, name: string): Promise<unknown[]> {
  const text = await readContent(content, name);
  try {
    return yaml
      .loadAll(text, null, { schema: yaml.CORE_SCHEMA })
      .filter((d) => d !== null && d !== undefined);
  } catch (err) {
    throw new ContentError(`"${name}" is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
}

/**
 * Replace the documents a spec names (load.plan, service.candidateManifests entries) by their content,
 * read from the content directory, so nothing after this point reads a file. Mutates `spec`.
 */
export async function inlineContent(
  spec: unknown,
  content: ContentDir | undefined,
  where: string,
): Promise<InputProblem[]> {
  const problems: InputProblem[] = [];
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) return problems;
  const s = spec as { load?: { plan?: unknown }; service?: { candidateManifests?: unknown } };
  const fail = (path: string, err: unknown) => {
    if (!(err instanceof ContentError)) throw err;
    problems.push({ file: where, path, message: err.message });
  };
  if (s.load && typeof s.load === 'object' && typeof s.load.plan === 'string') {
    try {
      const docs = await readDocuments(content, s.load.plan);
      if (docs.length !== 1 || typeof docs[0] !== 'object')
        throw new ContentError(`"${s.load.plan}" must hold one load plan document`);
      s.load.plan = docs[0];
    } catch (err) {
      fail('load.plan', err);
    }
  }
  const list = s.service && typeof s.service === 'object' ? s.service.candidateManifests : undefined;
  if (Array.isArray(list) && list.some((m) => typeof m === 'string')) {
    const out: unknown[] = [];
    for (const [i, m] of list.entries()) {
      if (typeof m !== 'string') {
        out.push(m);
        continue;
      }
      try {
        const docs = await readDocuments(content, m);
        if (!docs.length) throw new ContentError(`"${m}" holds no manifest`);
        out.push(...docs);
      } catch (err) {
        fail(`service.candidateManifests[${i}]`, err);
      }
    }
    if (!problems.length) s.service!.candidateManifests = out;
  }
  return problems;
}
