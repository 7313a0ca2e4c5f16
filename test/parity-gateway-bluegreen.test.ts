/** The blue/green release through every host of the engine ends the same way on service.mesh gateway-api (see helpers/parity.ts). */
import { parityScenario } from './helpers/parity.js';

parityScenario('bluegreen', 'gateway-api');
