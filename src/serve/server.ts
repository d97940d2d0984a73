/**
 * `serveFileSystem(fs, { port | socket, host })`: a node:http server for
 * the static handler, bound to 127.0.0.1 unless told otherwise (or to a
 * unix socket). `close()` stops accepting, ends idle keep-alive
 * connections, waits for requests in flight, and leaves the file system
 * open (its owner closes it).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError, IoError } from '../errors.js';
import type { FileSystem } from '../fs/types.js';
import { createStaticHandler, type HandlerOptions } from './handler.js';

export interface ServeOptions extends HandlerOptions {
  /** TCP port (0: any free port). Default 8080 unless `socket` is given. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Listen on this unix socket instead of TCP. */
  readonly socket?: string;
}

export interface FileSystemServer {
  readonly server: Server;
  /** `http://127.0.0.1:PORT` for TCP; the socket path for a unix socket. */
  readonly address: string;
  /** The TCP port, or undefined on a unix socket. */
  readonly port: number | undefined;
  close(): Promise<void>;
}

export async function serveFileSystem(fs: FileSystem, options: ServeOptions = {}): Promise<FileSystemServer> {
  if (options.socket !== undefined && options.port !== undefined) throw new InvalidArgumentError('port', 'give a port or a socket, not both');
  const port = options.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('port', `${port} is not a port number`);
  const host = options.host ?? '127.0.0.1';
  const server = createServer(createStaticHandler(fs, options));
  const where = options.socket ?? `${host}:${port}`;
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error) => reject(new IoError(`serve: cannot listen on ${where}: ${err.message}`, { cause: err }));
    const done = () => {
      server.off('error', failed);
      resolve();
    };
    server.once('error', failed);
    if (options.socket !== undefined) server.listen(options.socket, done);
    else server.listen(port, host, done);
  });
  const addr = server.address();
  const tcp = typeof addr === 'object' && addr !== null ? (addr as AddressInfo) : undefined;
  let closing: Promise<void> | undefined;
  return {
    server,
    address: tcp ? `http://${tcp.family === 'IPv6' ? `[${tcp.address}]` : tcp.address}:${tcp.port}` : String(addr),
    port: tcp?.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
