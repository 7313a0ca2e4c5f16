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
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testTimeout: 60000,
  // Suites wait on real servers and evidence, not on the CPU: two workers on a two-core agent halve the
  // wall time, and no test may depend on timing (windows end on evidence, waits on readiness).
  maxWorkers: 2,
  testSequencer: '<rootDir>/jest.sequencer.cjs',
};
