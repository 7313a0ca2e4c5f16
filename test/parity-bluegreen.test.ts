/** The bluegreen release through every host of the engine ends the same way (see helpers/parity.ts). */
import { parityScenario } from './helpers/parity.js';

parityScenario('bluegreen');
