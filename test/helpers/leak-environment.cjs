/**
 * Jest's node environment, plus a check at the end of each suite: whatever the suite left holding the
 * worker's event loop open (servers, sockets, child processes, ref'd timers) is reported on stderr with the
 * suite's name, since a worker that cannot exit is force-killed without saying which suite leaked.
 * LEAK_CHECK=fail makes such a suite fail (used when hunting a leak); by default it only reports.
 * Something started after a suite's teardown (a retry still running) escapes that check: a worker that jest
 * has to stop (SIGTERM) after its last suite prints what it still holds and the suites it ran, then exits.
 */
const NodeEnvironment = require('jest-environment-node').TestEnvironment;
const { appendFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { basename, join } = require('node:path');

// Also written to a file: a worker that is being stopped may no longer have jest reading its stderr.
const LOG = join(tmpdir(), 'clover-cd-jest-workers.log');

const count = (list) => list.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map());

/**
 * Once a worker's exit listeners have run, end the process at once: on a natural exit Node also tears down the
 * heap of every suite the worker ran. Jest reports a forced exit when a worker takes over 500 ms to be gone
 * after its last suite, and workers holding ~1 GB took 0.3-0.6 s on busy cores. Re-registered at each suite's
 * teardown so that it runs last; it changes nothing before the worker has decided to exit.
 */
const exitNow = (code) => process.exit(code);
const suitesRun = [];
let onStop;

class LeakCheckingEnvironment extends NodeEnvironment {
  constructor(config, context) {
    super(config, context);
    this.suite = basename(context.testPath);
  }

  async setup() {
    await super.setup();
    // A worker's stdout/stderr pipes are opened on first use: open them now so a suite's first log line
    // is not counted as something it left open.
    void process.stdout;
    void process.stderr;
    this.before = count(process.getActiveResourcesInfo());
    suitesRun.push(this.suite);
    if (!onStop && process.send) {
      onStop = () => {
        // Before jest's END message (its listener still there), a SIGTERM is jest replacing or interrupting
        // the worker between suites, not a worker failing to exit: nothing to report.
        if (process.listenerCount('message') > 0) process.exit(0);
        const held = [...count(process.getActiveResourcesInfo())].map(([k, n]) => `${k} ×${n}`).join(', ');
        const line = `leak-check: worker ${process.pid} stopped by jest holding ${held}; it ran ${suitesRun.join(', ')}\n`;
        process.stderr.write(line);
        appendFileSync(LOG, `${new Date().toISOString()} ${line}`);
        process.exit(1);
      };
      process.once('SIGTERM', onStop);
    }
  }

  async teardown() {
    // Closing servers and exiting children finish a few turns of the loop after the suite's afterAll:
    // give them up to 200 loop turns (bounded), stopping as soon as nothing extra is left.
    let extra = [];
    for (let turn = 0; turn < 200; turn++) {
      const now = count(process.getActiveResourcesInfo());
      extra = [...now].filter(([k, n]) => n > (this.before.get(k) ?? 0) && k !== 'TTYWrap');
      if (extra.length === 0) break;
      await new Promise((r) => setTimeout(r, 10).unref());
    }
    if (extra.length) {
      const what = extra.map(([k, n]) => `${k} ×${n - (this.before.get(k) ?? 0)}`).join(', ');
      process.stderr.write(`leak-check: ${this.suite} left ${what} holding the worker open\n`);
      if (process.env.LEAK_CHECK === 'fail') throw new Error(`${this.suite} left ${what} open`);
    }
    process.removeListener('exit', exitNow);
    process.on('exit', exitNow);
    await super.teardown();
  }
}

module.exports = LeakCheckingEnvironment;
