/**
 * Connection lifecycle for the host-side flavours (memory, file): admits
 * calls while connected, tracks those in flight, and on disconnect waits
 * for them before releasing resources. Blkfront has its own driver states
 * (reconnect, failure) and does not use this.
 *
 *   Connected ──disconnect()──▶ Disconnecting ──in-flight settled, release()──▶ Disconnected
 */
import { checkConnected } from './validate.js';

export enum LifecycleState {
  Connected = 'connected',
  Disconnecting = 'disconnecting',
  Disconnected = 'disconnected',
}

export class IoGate {
  #state = LifecycleState.Connected;
  readonly #inFlight = new Set<Promise<void>>();
  #closing: Promise<void> | undefined;

  get state(): LifecycleState {
    return this.#state;
  }

  /** Number of admitted calls not yet settled. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Runs `op` if connected, else rejects with `disconnected`. A synchronous
   * throw from `op` becomes a rejection. Returns `op`'s promise.
   */
  run<T>(op: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      checkConnected(this.#state === LifecycleState.Connected);
      p = op();
    } catch (err) {
      return Promise.reject(err);
    }
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.#inFlight.add(settled);
    void settled.then(() => this.#inFlight.delete(settled));
    return p;
  }

  /**
   * Stops admitting calls, waits for those in flight, then runs `release`
   * once. Idempotent: later calls return the same promise.
   */
  close(release: () => Promise<void>): Promise<void> {
    if (this.#closing === undefined) {
      this.#state = LifecycleState.Disconnecting;
      this.#closing = (async () => {
        while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
        try {
          await release();
        } finally {
          this.#state = LifecycleState.Disconnected;
        }
      })();
    }
    return this.#closing;
  }
}
