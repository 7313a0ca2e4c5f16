/**
 * The canary release through every host of the engine ends the same way on service.mesh gateway-api (see
 * helpers/parity.ts); blue/green and A/B on gateway-api are covered through release run in gateway-api.test.ts.
 */
import { parityScenario } from './helpers/parity.js';

parityScenario('canary', 'gateway-api');
