/** Public surface of the persistent queue. */
export { PersistentQueue } from './queue.js';
export type { QueueFormatOptions, QueueStats } from './queue.js';
export { crc32c } from './crc32c.js';
