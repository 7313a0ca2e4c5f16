/**
 * Longest suites first, so the workers end together: a fresh CI run has no timing cache, and Jest's
 * fallback (largest file first) started the five-minute parity suite last. Durations measured on CI.
 */
const Sequencer = require('@jest/test-sequencer').default;

const SLOW_FIRST = [
  'parity-',
  'release.test',
  'local-run.test',
  'engine.test',
  'demo.test',
  'traffic.test',
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
