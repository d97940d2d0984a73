/**
 * Exact-length reads from a socket: `read(n)` resolves with the next n
 * bytes, `skip(n)` drops them. The socket is paused while enough is
 * buffered and nobody waits, so a client cannot make us buffer without
 * bound. A closed socket rejects the waiting read with `disconnected`.
 */
import type { Socket } from 'node:net';
import { DisconnectedError } from '../errors.js';

const HIGH_WATER = 4 << 20;

export class SocketReader {
  #chunks: Buffer[] = [];
  #have = 0;
  #want = 0;
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#have += chunk.length;
      if (this.#have >= Math.max(this.#want, HIGH_WATER)) socket.pause();
      if (this.#have >= this.#want) this.#wake?.();
    });
    const close = (): void => {
      this.#closed = true;
      this.#wake?.();
    };
    socket.on('end', close);
    socket.on('close', close);
  }

  async read(n: number): Promise<Buffer> {
    await this.#fill(n);
    return this.#take(n);
  }

  /** Drops the next `n` bytes without keeping them all in memory. */
  async skip(n: number): Promise<void> {
    while (n > 0) {
      const step = Math.min(n, HIGH_WATER);
      await this.#fill(step);
      this.#take(step);
      n -= step;
    }
  }

  async #fill(n: number): Promise<void> {
    while (this.#have < n) {
      if (this.#closed) throw new DisconnectedError('nbd: client closed the connection mid-message');
      this.#want = n;
      this.socket.resume();
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
    this.#want = 0;
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) {
      // Fast path: the bytes sit in one chunk.
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#have -= n;
      return out;
    }
    const all = Buffer.concat(this.#chunks);
    this.#chunks = all.length > n ? [all.subarray(n)] : [];
    this.#have -= n;
    return all.subarray(0, n);
  }
}
