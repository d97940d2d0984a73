/**
 * A shared/exclusive lock, first come first served: fatfs calls run
 * shared (fatfs orders its own calls), our own FAT writes run exclusive,
 * because they change the device under fatfs's caches. A waiting exclusive
 * request holds back shared ones that come after it, so it is never starved.
 */
export class SharedExclusiveLock {
  private shared = 0;
  private exclusive = false;
  private readonly queue: { exclusive: boolean; go: () => void }[] = [];

  runShared<T>(fn: () => Promise<T>): Promise<T> {
    return this.run(false, fn);
  }

  runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.run(true, fn);
  }

  private async run<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((go) => {
      this.queue.push({ exclusive, go });
      this.pump();
    });
    try {
      return await fn();
    } finally {
      if (exclusive) this.exclusive = false;
      else this.shared--;
      this.pump();
    }
  }

  /** Starts whatever may run now, in queue order. */
  private pump(): void {
    for (;;) {
      const head = this.queue[0];
      if (head === undefined || this.exclusive) return;
      if (head.exclusive && this.shared > 0) return;
      this.queue.shift();
      if (head.exclusive) this.exclusive = true;
      else this.shared++;
      head.go();
      if (head.exclusive) return;
    }
  }
}
