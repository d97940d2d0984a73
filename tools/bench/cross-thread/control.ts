/**
 * The cross-thread bench's control page and event ports, JS side. The C
 * side (null-backend, ring-front) is test/peers/xring.h; the layout is the
 * same there, word for word:
 *
 * ```
 *  pool frame 0: blkif shared ring (one page, x86_64 ABI, 32 slots)
 *  pool frame 1: control page, u32 words
 *  byte 0     4          8      12      ...  64            68             ...  128            132
 *  +----------+----------+------+-------+----+-------------+--------------+----+--------------+---------------+
 *  |front_rdy | back_rdy | stop | abort |    | back.pending| back.sleeping|    | front.pending| front.sleeping|
 *  +----------+----------+------+-------+----+-------------+--------------+----+--------------+---------------+
 * ```
 * An event port (one per direction) is an event channel made of a pending
 * word, a sleeping word and a FIFO:
 *
 *   send:  pending = 1; if (sleeping) write(fifo, 1 byte)      (a "wake")
 *   wait:  sleeping = 1; while (!xchg(pending, 0)) read(fifo); sleeping = 0
 *
 * Store first, load second, both seq_cst (Atomics), so either the sender
 * sees the sleeper or the sleeper sees the event; no wake is lost, and a
 * sender makes a syscall only when its peer is asleep. The FIFO (not a
 * futex): V8's Atomics.wait is an in-process emulation that a C FUTEX_WAKE
 * never reaches, while a blocking read() works the same in C and in a
 * worker thread (never on the main thread, which must not block).
 * The byte is written and read with the addon's bare write()/read()
 * (src/native/wake.ts), not fs.writeSync/readSync, whose Node-side work
 * around the syscall the fronts would otherwise pay on every wake.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { fdWaker } from '../../../src/native/wake.js';

export const RING_FRAME = 0;
export const CONTROL_FRAME = 1;
export const POOL_PAGES = 2;

/** Word indices into the control page (Int32Array). */
export const W = {
  FRONT_READY: 0,
  BACK_READY: 1,
  STOP: 2,
  ABORT: 3,
  BACK_PORT: 16,
  FRONT_PORT: 32,
} as const;

/** Thrown (inside the bench only) when the host aborted a run. */
export class RunAborted extends Error {}

const ONE = new Uint8Array([1]);

export class EventPort {
  /** Bytes written to wake a sleeping peer (send side). */
  wakes = 0;
  /** Blocking reads that returned (wait side). */
  sleeps = 0;
  private readonly fd: number;
  private readonly io = fdWaker();

  constructor(private readonly ctl: Int32Array, private readonly word: number, fifo: string) {
    // 'r+' = O_RDWR: opening a FIFO for both ends never blocks and never reads EOF.
    this.fd = openSync(fifo, 'r+');
  }

  send(): void {
    Atomics.store(this.ctl, this.word, 1);
    // pending stored /before/ sleeping is read (pairs with wait)
    if (Atomics.load(this.ctl, this.word + 1) !== 0) {
      this.io.writeByte(this.fd);
      this.wakes++;
    }
  }

  /** Block until an event is pending; throws RunAborted if the host aborts. */
  wait(): void {
    Atomics.store(this.ctl, this.word + 1, 1);
    // sleeping stored /before/ pending is taken (pairs with send)
    while (Atomics.exchange(this.ctl, this.word, 0) === 0) {
      if (Atomics.load(this.ctl, W.ABORT) !== 0) {
        Atomics.store(this.ctl, this.word + 1, 0);
        throw new RunAborted('the host aborted the run');
      }
      this.io.readBytes(this.fd);
      this.sleeps++;
    }
    Atomics.store(this.ctl, this.word + 1, 0);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The host's way out of a stuck run: flag abort, then wake whoever sleeps. */
export function abortRun(ctl: Int32Array, fifos: readonly string[]): void {
  Atomics.store(ctl, W.ABORT, 1);
  for (const f of fifos) {
    try {
      const fd = openSync(f, 'r+');
      writeSync(fd, ONE, 0, 1, null);
      closeSync(fd);
    } catch { /* already gone */ }
  }
}
