/**
 * A job's view of one of its devices: the same BlockDevice, except that an
 * error saying the device itself is gone (`protocol`: the peer broke the
 * protocol and the device failed closed; `disconnected` while the runner did
 * not disconnect it) is reported to the runner once, which stops the job.
 * Errors about one call (`invalid-argument`, `out-of-range`, `read-only`,
 * `unsupported`, `io`) are the caller's business and pass through silently.
 * The job cannot disconnect its devices: the runner owns them.
 */
import { XenpvError } from '../errors.js';
import type { BlockDevice, BlockInfo, ResizeListener } from '../block/types.js';

export function isDeviceFatal(err: unknown): boolean {
  return err instanceof XenpvError && (err.code === 'protocol' || err.code === 'disconnected');
}

export class WatchedDevice implements BlockDevice {
  private reported = false;
  /** Set by the runner before it disconnects: `disconnected` is then expected. */
  releasing = false;

  constructor(
    readonly name: string,
    readonly inner: BlockDevice,
    private readonly onFatal: (name: string, err: XenpvError) => void,
  ) {}

  info(): BlockInfo { return this.inner.info(); }
  read(sector: bigint, buffers: Uint8Array[]): Promise<void> { return this.watch(this.inner.read(sector, buffers)); }
  write(sector: bigint, buffers: Uint8Array[]): Promise<void> { return this.watch(this.inner.write(sector, buffers)); }
  flush(): Promise<void> { return this.watch(this.inner.flush()); }
  discard(sector: bigint, count: bigint): Promise<void> { return this.watch(this.inner.discard(sector, count)); }
  onResize(listener: ResizeListener): () => void { return this.inner.onResize(listener); }

  /** The runner disconnects devices; a job calling this is told no. */
  disconnect(): Promise<void> {
    return Promise.reject(new XenpvError('invalid-argument', `device ${this.name}: the job runner owns it and disconnects it when the job stops`));
  }

  private watch(p: Promise<void>): Promise<void> {
    return p.catch((err: unknown) => {
      if (!this.releasing && !this.reported && isDeviceFatal(err)) {
        this.reported = true;
        this.onFatal(this.name, err as XenpvError);
      }
      throw err;
    });
  }
}
