/**
 * Longest suites first, so the workers end together: a fresh CI run has no timing cache, and Jest's
 * fallback (largest file first) started the five-minute parity suite last. Ordered by their durations on two busy cores.
 */
const Sequencer = require('@jest/test-sequencer').default;

const SLOW_FIRST = [
  'distributed-load.test',
  'parity-canary',
  'fuzz/why-corpus.test',
  'local-run.test',
  'engine.test',
  'parity-',
  'demo.test',
  'release.test',
  'stage-server-cli.test',
  'traffic.test',
  'paths-and-promises.test',
  'jmeter-run.test',
  'gateway-api.test',
  'gate-sequential.test',
  'pack.test',
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
