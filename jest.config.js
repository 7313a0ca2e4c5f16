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
  // A worker keeps every suite's module graph it ran (ESM modules in vm contexts are not freed): one grew to
  // 1.2 GB. Exiting that took 0.4-0.6 s on busy cores, past the 500 ms after which jest kills a worker and
  // reports a forced exit. A worker whose heap passes this after a suite is replaced (a ~1 s start).
  workerIdleMemoryLimit: '400MB',
  testSequencer: '<rootDir>/jest.sequencer.cjs',
  // The JVMs the suites start (JMeter, groovy) with C1 only and the serial collector (see the file for why).
  globalSetup: '<rootDir>/test/helpers/jvm-options.cjs',
};
