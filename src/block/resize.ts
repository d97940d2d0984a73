/**
 * The resize event every flavour offers as `onResize(listener)`. Listeners
 * run synchronously in registration order; one that throws does not stop
 * the others nor the device: its exception is re-thrown from a fresh
 * macrotask, where it surfaces as an uncaught exception like any faulty
 * Node callback (never swallowed).
 */
import { InvalidArgumentError } from '../errors.js';
import type { BlockInfo, ResizeListener } from './types.js';

export class ResizeNotifier {
  readonly #listeners = new Set<{ fn: ResizeListener }>();

  /** Adds a listener; returns a function that removes it (idempotent). */
  on(listener: ResizeListener): () => void {
    if (typeof listener !== 'function') throw new InvalidArgumentError('listener', 'must be a function');
    // Wrapped so the same function can be registered twice and removed independently.
    const entry = { fn: listener };
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** Calls every listener with `info`. */
  emit(info: BlockInfo): void {
    for (const entry of [...this.#listeners]) {
      try {
        entry.fn(info);
      } catch (err) {
        setImmediate(() => {
          throw err;
        });
      }
    }
  }
}
