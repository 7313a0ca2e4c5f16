/**
 * `release status --watch` follows a release run by another process on the sandbox: without a terminal it
 * prints one line per change and ends with the release's exit code when it is promoted; on a pseudo-terminal
 * (`script`) it redraws one block in place.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSpec } from '../src/spec/load.js';
import { runRelease } from '../src/stages/index.js';
import { BIN, REPO } from './helpers/cli.js';
import { startReleaseLab, type ReleaseLab } from './helpers/release-lab.js';

let lab: ReleaseLab;
let file: string;

beforeAll(async () => {
  lab = await startReleaseLab('release-watch');
  file = lab.writeSpec('watch-canary', { canary: { steps: [20, 50], window: '3s' } });
}, 60_000);

afterAll(async () => {
  await lab?.stop();
});

interface Watcher {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
  /** Resolves once the output matches (bounded by the child's own --timeout). */
  waitFor(re: RegExp): Promise<void>;
}

function watch(tty: boolean): Watcher {
  const args = [
    BIN,
    'release',
    'status',
    file,
    '--watch',
    '--platform',
    'sandbox',
    '--state-dir',
    lab.stateDir,
    '--interval',
    '250ms',
    '--timeout',
    '90s',
  ];
  const quoted = [process.execPath, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  // script(1) gives the command a pseudo-terminal: stdout.isTTY is true inside.
  const child = tty
    ? spawn('script', ['-qfec', quoted, '/dev/null'], {
        cwd: REPO,
        env: { ...process.env, NODE_OPTIONS: '', TERM: 'xterm' },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn(process.execPath, args, {
        cwd: REPO,
        env: { ...process.env, NODE_OPTIONS: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
  let out = '';
  const waiters: Array<{ re: RegExp; done: () => void }> = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) {
      if (w.re.test(out)) w.done();
      else waiters.push(w);
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return {
    child,
    out: () => out,
    exited,
    waitFor: (re) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(out)) return resolve();
        waiters.push({ re, done: resolve });
        void exited.then(() =>
          re.test(out) ? resolve() : reject(new Error(`watch ended without ${re}: ${out}`)),
        );
      }),
  };
}

describe('release status --watch', () => {
  it('follows a running release, one line per change without a terminal, redrawn in place on one', async () => {
    const plain = watch(false);
    const tty = watch(true);
    // Both watchers are up (they have printed the release as not started) before the release begins.
    await Promise.all([plain.waitFor(/watch-canary: not started/), tty.waitFor(/NOT STARTED/)]);
    const { spec } = loadSpec(file);
    const r = await runRelease(lab.sb.platform, spec, { autoApprove: true, evidenceDir: lab.evidenceDir });
    // The whole state on failure: a rollback says why (cause, the verdict of each step).
    expect({ phase: r.state.phase, state: r.state.phase === 'promoted' ? undefined : r.state }).toEqual({
      phase: 'promoted',
      state: undefined,
    });
    const [plainCode, ttyCode] = await Promise.all([plain.exited, tty.exited]);
    expect(plainCode).toBe(0);
    expect(ttyCode).toBe(0);

    if (process.env.CLOVER_CD_SCREENSHOTS) {
      writeFileSync(join(process.env.CLOVER_CD_SCREENSHOTS, 'watch-plain.txt'), plain.out());
      writeFileSync(join(process.env.CLOVER_CD_SCREENSHOTS, 'watch-tty.txt'), tty.out());
    }
    const lines = plain.out().trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(
      /watch-canary: promoted \| step 2\/2 \(weight 50%\) \| v1\/v2 0% \/ 100% \| last verdict step 2: pass/,
    );
    expect(plain.out()).toMatch(
      /step 1\/2 \(weight 20%\) \| v1\/v2 80% \/ 20% \| window \S+ left \| samples \d+\/\d+/,
    );
    expect(plain.out()).toMatch(/step 2\/2 \(weight 50%\) \| v1\/v2 50% \/ 50%/);
    // The running decision per rule, from the watch's own looks: open while undecided, then passed.
    expect(plain.out()).toMatch(/\| rules errorRate (open|pass)/);
    expect(plain.out()).not.toMatch(/\x1b\[/); // eslint-disable-line no-control-regex -- no escape codes in a log
    // One line per change: far fewer lines than reads (a 250 ms interval over a release of several seconds).
    expect(lines.length).toBeLessThan(20);
    const said = lines.map((l) => l.replace(/^\S+ /, ''));
    expect(said.filter((l, i) => i > 0 && l === said[i - 1])).toEqual([]); // no line repeats the one before

    const screen = tty.out();
    expect(screen).toMatch(/\x1b\[\d+A/); // eslint-disable-line no-control-regex -- cursor up: the block is redrawn
    expect(screen).toMatch(/weights {2}v1 +█*░* 80%/);
    expect(screen).toMatch(/samples {2}\d+ of \d+ planned candidate requests/);
    expect(screen).toMatch(/release watch-canary {2}PROMOTED/);
    expect(screen).toMatch(
      /rules {4}(deciding|decided PASS) \(this watch's own looks(, since watching)?\):\r?\n\S*\s+errorRate (OPEN|PASS)/,
    );
  }, 120_000);
});
