export * from './plan.js';
export * from './machine.js';
