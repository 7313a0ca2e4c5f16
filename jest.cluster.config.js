import base from './jest.config.js';

/**
 * `npm run test:cluster`: suites that need the real kube-apiserver of ../shared/tools/real-apiserver
 * (REALK8S_DIR, default /tmp/realk8s). The default `npm test` ignores test/cluster/.
 */
/** @type {import('jest').Config} */
export default {
  ...base,
  roots: ['<rootDir>/test/cluster'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 120000,
};
