/** The canary release through every host of the engine ends the same way on service.mesh gateway-api (see helpers/parity.ts). */
import { parityScenario } from './helpers/parity.js';

parityScenario('canary', 'gateway-api');
