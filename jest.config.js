import { createDefaultEsmPreset } from 'ts-jest';

/** @type {import('jest').Config} */
export default {
  // Jest's node environment that names a suite leaving handles open (the cause of forced worker exits).
  testEnvironment: '<rootDir>/test/helpers/leak-environment.cjs',
  roots: ['<rootDir>/test'],
  // test/cluster/ needs a real API server: `npm run test:cluster` (jest.cluster.config.js); test/images/ the
  // built images: `npm run test:images` (jest.images.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/cluster/', '<rootDir>/test/images/'],
  ...createDefaultEsmPreset({ tsconfig: 'tsconfig.json' }),
  // ts-jest, with the builtins each module reads bound to module constants (see the transformer for why).
  transform: {
    '^.+\\.m?tsx?$': [
      '<rootDir>/test/helpers/fast-globals-transformer.cjs',
      { tsconfig: 'tsconfig.json', useESM: true },
    ],
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testTimeout: 60000,
  // Suites wait on real servers, JVM starts and evidence as much as on the CPU: on two cores kept busy by
  // other work, jest took 784-893 s with two workers and 578 s with three; after the suites' CPU was cut,
  // 433 s with three, 378-399 s with four and 359 s with five. No test may depend on timing (windows end on
  // evidence, waits on readiness), so more workers only fill the waits.
  maxWorkers: 5,
  // No workerIdleMemoryLimit: jest-worker 29.7 asks a worker for its heap after each suite and restarts it when
  // over the limit. When the answer comes after jest has sent the end message (a busy machine), the worker is
  // killed, a new one forked and the end message sent again (ChildProcessWorker._performRestartIfRequired and
  // _onExit); starting a process on busy cores outlasts the 500 ms jest allows a worker to end, so jest reports
  // a forced exit that no suite caused. Without the limit, workers peaked at 0.6-0.9 GB RSS in eleven busy runs
  // (Node 20 never frees a suite's ES modules); test/helpers/leak-environment.cjs makes a worker exit without
  // tearing its heap down.
  testSequencer: '<rootDir>/jest.sequencer.cjs',
  // The JVMs the suites start (JMeter, groovy) with C1 only and the serial collector (see the file for why).
  globalSetup: '<rootDir>/test/helpers/jvm-options.cjs',
};
