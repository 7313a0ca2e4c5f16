export * from './plan.js';
export * from './machine.js';
export * from './istio.js';
export * from './state.js';
