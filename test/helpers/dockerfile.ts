/**
 * The image config a Dockerfile stage sets (ENTRYPOINT, ENV, USER, WORKDIR), following `FROM <stage>` to the
 * stages it builds on: what the images of scripts/build-images.sh must match.
 */
import { readFileSync } from 'node:fs';

export interface StageConfig {
  entrypoint?: string[];
  env: Record<string, string>;
  user?: string;
  workdir?: string;
}

/** `stage`: a stage name (FROM … AS name); default the last stage, which `docker build` builds without --target. */
export function dockerfileStage(file: string, stage?: string): StageConfig {
  const lines = readFileSync(file, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = new Map<string, StageConfig>();
  let current: StageConfig | undefined;
  for (const line of lines) {
    const [instruction, ...rest] = line.split(/\s+/);
    const value = rest.join(' ');
    switch (instruction.toUpperCase()) {
      case 'FROM': {
        const [from, , name] = rest;
        const base = stages.get(from);
        current = base ? structuredClone(base) : { env: {} };
        stages.set(name ?? `#${stages.size}`, current);
        stages.set('#last', current);
        break;
      }
      case 'ENTRYPOINT':
        current!.entrypoint = JSON.parse(value) as string[];
        break;
      case 'ENV':
        for (const kv of rest) current!.env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
        break;
      case 'USER':
        current!.user = value;
        break;
      case 'WORKDIR':
        current!.workdir = value;
        break;
    }
  }
  const found = stages.get(stage ?? '#last');
  if (!found) throw new Error(`${file}: no stage ${stage}`);
  return found;
}
