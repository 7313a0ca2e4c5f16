/**
 * Runs the Jenkins library harness (test/jenkins/harness.groovy) once and returns its records: per case the build
 * result, error, the steps called in order, and what the stand-in clover-cd / docker / npm recorded.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface Call {
  step: string;
  [k: string]: any;
}
export interface Run {
  argv: string[];
  env: Record<string, string>;
}
export interface Case {
  name: string;
  returned?: number;
  result: string;
  error?: string;
  calls: Call[];
  runs: Run[];
  docker: string[][];
  npm: string[][];
  log: string;
}

/** A JAVA_HOME that exists: the given one, else the JDK of the `java` on PATH (Debian's default-java may be absent). */
function javaHome(): string | undefined {
  if (process.env.JAVA_HOME && existsSync(`${process.env.JAVA_HOME}/bin/java`)) return process.env.JAVA_HOME;
  const java = spawnSync('sh', ['-c', 'command -v java'], { encoding: 'utf8' }).stdout.trim();
  return java ? dirname(dirname(realpathSync(java))) : undefined;
}

/** The harness over vars/cloverCd.groovy in `work`, with the hostile parameter values given. */
export function runJenkinsHarness(work: string, hostile: { values: string[]; step: string }) {
  const groovy = spawnSync('sh', ['-c', 'command -v groovy'], { encoding: 'utf8' }).stdout.trim();
  if (!groovy)
    throw new Error('groovy is not installed: bash scripts/setup.sh installs it (Debian package groovy)');
  const values = join(work, 'hostile.json');
  writeFileSync(values, JSON.stringify(hostile));
  const args = [
    '-cp',
    'test/jenkins',
    'test/jenkins/harness.groovy',
    'vars/cloverCd.groovy',
    join(work, 'cases'),
    values,
  ];
  const out = execFileSync(groovy, args, {
    encoding: 'utf8',
    env: { ...process.env, JAVA_HOME: javaHome() ?? '' },
    timeout: 240_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const cases = new Map<string, Case>();
  let sandboxUsed: string[] = [];
  for (const line of out.split('\n').filter((l) => l.startsWith('{'))) {
    const c = JSON.parse(line) as Case & { used?: string[] };
    if (c.name === 'sandbox') sandboxUsed = c.used ?? [];
    else cases.set(c.name, c);
  }
  const get = (name: string) => {
    const c = cases.get(name);
    if (!c)
      throw new Error(`no case "${name}" in the harness output (have: ${[...cases.keys()].join(', ')})`);
    return c;
  };
  return { cases, get, sandboxUsed };
}

/** The steps of one kind a case called, in order. */
export const steps = (c: Case, step: string) => c.calls.filter((x) => x.step === step);
/** An argument list written as one string (for lists whose words hold no space). */
export const argv = (words: string) => words.split(' ');
