/**
 * /dev/xen/evtchn as the kernel defines it (drivers/xen/evtchn.c):
 *
 * - the bind ioctls bind a port to this open file and enable it;
 * - when an enabled port fires, the kernel disables it and appends the port
 *   number to a ring; read() returns whole evtchn_port_t (u32, host order)
 *   entries from that ring, blocking while it is empty; EFBIG once it
 *   overflowed (IOCTL_EVTCHN_RESET clears it);
 * - write() of port numbers enables those ports again ("unmask").
 *
 * ```
 *  read() / write() buffer
 *  0        4        8               4n
 *  +--------+--------+--- ... ------+
 *  | port   | port   |              |   u32 each (evtchn_port_t)
 *  +--------+--------+--- ... ------+
 * ```
 * EvtchnDevice is the narrow surface LinuxEventChannels needs; tests give it
 * a model of the kernel driver, openEvtchnDevice() the real file.
 */
import { closeSync, writeSync } from 'node:fs';
import { NativeError } from '../../native/errors.js';
import { readNow, watchReadable, type FdWatch } from '../../native/fd-poll.js';
import {
  evtchnBindInterdomain,
  evtchnBindUnboundPort,
  evtchnNotify,
  evtchnReset,
  evtchnUnbind,
} from '../../native/xen-dev.js';

export interface EvtchnDevice {
  bindUnboundPort(remoteDomain: number): number;
  bindInterdomain(remoteDomain: number, remotePort: number): number;
  unbind(port: number): void;
  notify(port: number): void;
  /** IOCTL_EVTCHN_RESET. */
  reset(): void;
  /**
   * Ports that fired (each now disabled until `unmask`). Waits until at
   * least one did (resolves with none once the device is closed). Rejects with a NativeError whose errno is EFBIG when the
   * kernel's ring overflowed.
   */
  readPorts(): Promise<number[]>;
  /** write(): enable `ports` again. */
  unmask(ports: readonly number[]): void;
  close(): void;
}

/** Pending ports one read() takes at most (the kernel's ring holds 1024 by default). */
const READ_PORTS = 1024;

/**
 * The real device on `fd` (opened O_RDWR). Reads are driven by the event
 * loop (src/native/fd-poll.ts): the fd is made non-blocking and read only
 * when poll() says ports are pending, so no thread is ever parked in a
 * blocking read(). Such a read could not be cancelled and kept the process
 * from exiting, even on process.exit() (libuv joins its pool threads at
 * exit). The watcher keeps the process alive only while a readPorts() waits;
 * close() stops it at once and settles a waiting read with no ports.
 */
export function evtchnDeviceOnFd(fd: number): EvtchnDevice {
  const buf = Buffer.alloc(READ_PORTS * 4);
  let waiting: { resolve: (ports: number[]) => void; reject: (err: unknown) => void } | undefined;
  let closed = false;
  const decode = (bytesRead: number): number[] => {
    const ports: number[] = [];
    for (let at = 0; at + 4 <= bytesRead; at += 4) ports.push(buf.readUInt32LE(at));
    return ports;
  };
  /** Serve the waiting read if the kernel has ports; true when it was settled. */
  const tryRead = (): boolean => {
    if (waiting === undefined) return false;
    const w = waiting;
    let n: number | undefined;
    try {
      n = readNow(fd, buf);
    } catch (err) {
      waiting = undefined;
      watch?.ref(false);
      w.reject(err instanceof NativeError ? new NativeError(`read of the evtchn device: ${err.message}`, { cause: err, errno: err.errno, syscall: 'read' }) : err);
      return true;
    }
    if (n === undefined) return false; // nothing pending: wait for poll
    waiting = undefined;
    watch?.ref(false);
    w.resolve(decode(n));
    return true;
  };
  // Started by the first readPorts(): the ioctls need no watcher.
  let watch: FdWatch | undefined;
  const startWatch = (): FdWatch =>
    watchReadable(fd, (err) => {
      if (err !== undefined) {
        // poll() says EPOLLERR when the kernel's ring overflowed, and libuv
        // then stops the watcher. The read tells what it is (EFBIG, which the
        // caller recovers from); the next readPorts() starts a new watcher.
        watch = undefined;
        if (tryRead() || waiting === undefined) return;
        try {
          watch = startWatch();
          watch.ref(true);
        } catch (again) {
          const w = waiting;
          waiting = undefined;
          w.reject(again);
        }
        return;
      }
      tryRead();
    });
  return {
    bindUnboundPort: (remote) => evtchnBindUnboundPort(fd, remote),
    bindInterdomain: (remote, port) => evtchnBindInterdomain(fd, remote, port),
    unbind: (port) => evtchnUnbind(fd, port),
    notify: (port) => evtchnNotify(fd, port),
    reset: () => evtchnReset(fd),
    readPorts: () =>
      new Promise((resolve, reject) => {
        if (closed) { resolve([]); return; }
        if (waiting !== undefined) { reject(new NativeError('readPorts: a read is already waiting')); return; }
        try {
          watch ??= startWatch();
        } catch (err) {
          reject(err);
          return;
        }
        waiting = { resolve, reject };
        watch.ref(true);
        tryRead();
      }),
    unmask: (ports) => {
      if (ports.length === 0) return;
      const out = Buffer.alloc(ports.length * 4);
      ports.forEach((p, i) => out.writeUInt32LE(p, i * 4));
      try {
        writeSync(fd, out, 0, out.length);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new NativeError(`write of the evtchn device: ${e.message}`, { cause: err, errno: -(e.errno ?? 0), syscall: 'write' });
      }
    },
    close: () => {
      if (closed) return;
      closed = true;
      // The watcher goes before the fd: a closed number may be reused at once.
      watch?.stop();
      const w = waiting;
      waiting = undefined;
      w?.resolve([]);
      closeSync(fd);
    },
  };
}
