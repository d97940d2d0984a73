/**
 * Platform services. Drivers import the interfaces (types.ts) and the error
 * classes; only code that sets up a simulation imports `sim`.
 */
export * from './types.js';
export { GrantError, EvtchnError, type GrantRefusal, type EvtchnRefusal } from './sim/errors.js';
export * as sim from './sim/index.js';
