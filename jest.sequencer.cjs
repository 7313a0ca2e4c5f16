/**
 * Longest suites first, so the workers end together: a fresh CI run has no timing cache, and Jest's
 * fallback (largest file first) started the five-minute parity suite last. Ordered by their durations on two busy cores.
 */
const Sequencer = require('@jest/test-sequencer').default;

const SLOW_FIRST = [
  'distributed-load.test',
  'gate-sequential.test',
  'fuzz/why-corpus.test',
  'parity-canary',
  'local-run.test',
  'parity-',
  'engine.test',
  'traffic.test',
  'demo.test',
  'jmeter-run.test',
  'release.test',
  'pack.test',
  'stage-server-cli.test',
];
const rank = (path) => {
  const i = SLOW_FIRST.findIndex((name) => path.includes(`/test/${name}`));
  return i < 0 ? SLOW_FIRST.length : i;
};

class SlowFirstSequencer extends Sequencer {
  sort(tests) {
    const byDefault = super.sort(tests);
    return [...byDefault].sort((a, b) => rank(a.path) - rank(b.path));
  }
}

module.exports = SlowFirstSequencer;
