/**
 * Connection lifecycle for the host-side flavours (memory, file): admits
 * calls while connected, tracks those in flight, and on disconnect waits
 * for them before releasing resources. Blkfront has its own driver states
 * (reconnect, failure) and does not use this.
 *
 *   Connected ──disconnect()──▶ Disconnecting ──in-flight settled, release()──▶ Disconnected
 *       │                              ▲
 *       └──fail(err)──▶ Failed ──disconnect()
 *
 * Failed is sticky: every later call rejects with the same error until the
 * device is disconnected (and reopened by its owner). The file flavour
 * enters it when fdatasync fails (see README "Storage rules").
 */
import type { XenpvError } from '../errors.js';
import { checkConnected } from './validate.js';

export enum LifecycleState {
  Connected = 'connected',
  Disconnecting = 'disconnecting',
  Disconnected = 'disconnected',
  Failed = 'failed',
}

export class IoGate {
  #state = LifecycleState.Connected;
  readonly #inFlight = new Set<Promise<void>>();
  #closing: Promise<void> | undefined;
  #failure: XenpvError | undefined;

  get state(): LifecycleState {
    return this.#state;
  }

  /** Number of admitted calls not yet settled. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** The error that failed the device, if it failed. */
  get failure(): XenpvError | undefined {
    return this.#failure;
  }

  /** Fail the device (first error wins): every later `run` rejects with `err`. */
  fail(err: XenpvError): void {
    if (this.#failure !== undefined || this.#state !== LifecycleState.Connected) return;
    this.#failure = err;
    this.#state = LifecycleState.Failed;
  }

  /**
   * Runs `op` if connected, else rejects with `disconnected` (or, once
   * failed, with the failure). A synchronous
   * throw from `op` becomes a rejection. Returns `op`'s promise.
   */
  run<T>(op: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      if (this.#failure !== undefined && this.#state === LifecycleState.Failed) throw this.#failure;
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
