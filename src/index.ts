export * as blkif from './blkif/index.js';
