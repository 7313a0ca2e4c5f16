import base from './jest.config.js';

/**
 * `npm run test:images`: runs what clover-cd generates in the images `bash scripts/build-images.sh --jmeter`
 * writes to build/images/ (exported, under chroot, as root). The default `npm test` ignores test/images/.
 */
/** @type {import('jest').Config} */
export default {
  ...base,
  roots: ['<rootDir>/test/images'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 300000,
  maxWorkers: 1,
};
