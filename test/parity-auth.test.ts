/** Inline webhook stages against a stage server that checks callers as the shipped one (see helpers/parity.ts). */
import { describe } from '@jest/globals';
import { stageServerAuthParity } from './helpers/parity.js';

describe('the stage server checks callers as deploy/clover-cd ships it, in every local run', () =>
  stageServerAuthParity());
