/**
 * Process lifetime: the library's background machinery (domain workers,
 * MessagePorts, sockets, Atomics.waitAsync loops, retry timers) is unref'd,
 * so it never keeps a process alive on its own. While a user's call is
 * pending, one ref'd timer holds the event loop open instead: a top-level
 * `await dev.read(...)` waits for its answer, and once nothing is pending a
 * script that forgot `sim.stop()` or `dev.disconnect()` exits.
 *
 *   hold()  ──▶ holds 0→1: start the ref'd timer
 *   release ──▶ holds 1→0: clear it
 */

let holds = 0;
let timer: NodeJS.Timeout | undefined;

/** Keep the process alive until the returned function is called (idempotent). */
export function hold(): () => void {
  if (holds++ === 0) timer = setInterval(() => undefined, 0x7fffffff);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holds === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

/** `p`, keeping the process alive until it settles. */
export function keepAlive<T>(p: Promise<T>): Promise<T> {
  const release = hold();
  return p.finally(release);
}

/** Holds currently taken (tests). */
export function activeHolds(): number {
  return holds;
}
