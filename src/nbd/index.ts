/** Public surface of the NBD export. */
export { NbdServer } from './server.js';
export type { NbdServerOptions, NbdExportSpec } from './server.js';
