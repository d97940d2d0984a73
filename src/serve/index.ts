/** A website served from a file system on a BlockDevice. */
export { serveFileSystem } from './server.js';
export type { ServeOptions, FileSystemServer } from './server.js';
export { createStaticHandler, etagOf } from './handler.js';
export type { HandlerOptions, RequestHandler } from './handler.js';
export { contentType } from './mime.js';
