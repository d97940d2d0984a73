/**
 * NbdServer: exports BlockDevices over NBD (fixed newstyle; simple or
 * structured replies) on 127.0.0.1:<port> or a unix socket — never another address:
 * NBD has no authentication.
 *
 *   const server = await NbdServer.listen({ exports: [{ name: 'disk', device }], port: 10809 });
 *   // nbdinfo nbd://127.0.0.1:10809/disk ; nbdcopy ... ; nbd-client ...
 *   await server.close();
 *
 * The first export is also the default export (the empty name). A client
 * that misbehaves or vanishes loses its connection only; in-flight device
 * calls finish before its connection is forgotten. The server never
 * disconnects the devices: they belong to the caller.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { rm } from 'node:fs/promises';
import type { BlockDevice } from '../block/types.js';
import { InvalidArgumentError, IoError } from '../errors.js';
import { describeExport, type Export } from './export.js';
import { negotiate } from './negotiate.js';
import { SocketReader } from './reader.js';
import { Transmission } from './transmission.js';

export interface NbdExportSpec {
  readonly name: string;
  readonly device: BlockDevice;
  readonly description?: string;
}

export interface NbdServerOptions {
  readonly exports: readonly NbdExportSpec[];
  /** TCP port on 127.0.0.1 (0: any free port; see `port`). */
  readonly port?: number;
  /** Unix socket path (removed first if a stale socket is there, and on close). */
  readonly path?: string;
  /** Connection events (client left, protocol violation), for a log. */
  readonly log?: (message: string) => void;
}

export class NbdServer {
  readonly #connections = new Map<Socket, Promise<void>>();
  #closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    private readonly specs: readonly NbdExportSpec[],
    private readonly options: NbdServerOptions,
    /** The TCP port listened on, or undefined for a unix socket. */
    readonly port: number | undefined,
  ) {}

  static async listen(options: NbdServerOptions): Promise<NbdServer> {
    const { exports, port, path } = options;
    if (!Array.isArray(exports) || exports.length === 0) throw new InvalidArgumentError('exports', 'needs at least one { name, device }');
    const names = new Set<string>();
    for (const e of exports) {
      if (typeof e?.name !== 'string' || Buffer.byteLength(e.name) > 4096 || e.name.includes('\0') || names.has(e.name)) {
        throw new InvalidArgumentError('exports', `export name ${JSON.stringify(e?.name)} must be a unique string without NUL, at most 4096 bytes`);
      }
      names.add(e.name);
    }
    if ((port === undefined) === (path === undefined)) throw new InvalidArgumentError('port', 'give exactly one of port or path');
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new InvalidArgumentError('port', `must be 0..65535, got ${port}`);
    if (path !== undefined) await rm(path, { force: true }).catch(() => undefined);
    let self: NbdServer | undefined;
    const server = createServer((sock) => self?.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new IoError(`nbd: cannot listen on ${path ?? `127.0.0.1:${port}`}: ${err.message}`, { cause: err })));
      if (path !== undefined) server.listen(path, resolve);
      else server.listen(port, '127.0.0.1', resolve);
    });
    const addr = server.address();
    self = new NbdServer(server, exports, options, typeof addr === 'object' && addr !== null ? addr.port : undefined);
    return self;
  }

  /** Live connections. */
  get connections(): number {
    return this.#connections.size;
  }

  #lookup(name: string): Export | undefined {
    const spec = name === '' ? this.specs[0] : this.specs.find((s) => s.name === name);
    return spec === undefined ? undefined : describeExport(spec.name, spec.device, spec.description);
  }

  private accept(sock: Socket): void {
    if (this.#closing !== undefined) {
      sock.destroy();
      return;
    }
    sock.setNoDelay(true);
    sock.on('error', () => undefined); // a reset is reported as close below
    const done = this.#run(sock).finally(() => {
      this.#connections.delete(sock);
      sock.destroy();
    });
    this.#connections.set(sock, done);
  }

  async #run(sock: Socket): Promise<void> {
    const reader = new SocketReader(sock);
    try {
      const chosen = await negotiate(sock, reader, (n) => this.#lookup(n), () => this.specs.map((s) => this.#lookup(s.name)!));
      if (chosen === undefined) {
        sock.end();
        return;
      }
      await new Transmission(sock, reader, chosen).serve();
      sock.end();
    } catch (err) {
      this.options.log?.(`nbd: connection ended: ${(err as Error).message}`);
    }
  }

  /** Stops listening and ends every connection (after their in-flight requests). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const sock of this.#connections.keys()) sock.end();
      // A client that does not hang up is cut off; its requests still finish.
      const timer = setTimeout(() => {
        for (const sock of this.#connections.keys()) sock.destroy();
      }, 1000);
      await Promise.allSettled([...this.#connections.values()]);
      clearTimeout(timer);
      await closed;
      if (this.options.path !== undefined) await rm(this.options.path, { force: true }).catch(() => undefined);
    })();
    return this.#closing;
  }
}
