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
import { closeSync, read, writeSync } from 'node:fs';
import { NativeError } from '../../native/errors.js';
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
   * Ports that fired (each now disabled until `unmask`). Blocks until at
   * least one did. Rejects with a NativeError whose errno is EFBIG when the
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
 * The real device on `fd` (opened O_RDWR). read() runs on libuv's
 * threadpool: a blocking read there keeps the main thread's event loop free
 * (one of the pool's UV_THREADPOOL_SIZE threads stays parked in it while no
 * event arrives); the device needs no poll support and no worker thread.
 */
export function evtchnDeviceOnFd(fd: number): EvtchnDevice {
  const buf = Buffer.alloc(READ_PORTS * 4);
  return {
    bindUnboundPort: (remote) => evtchnBindUnboundPort(fd, remote),
    bindInterdomain: (remote, port) => evtchnBindInterdomain(fd, remote, port),
    unbind: (port) => evtchnUnbind(fd, port),
    notify: (port) => evtchnNotify(fd, port),
    reset: () => evtchnReset(fd),
    readPorts: () =>
      new Promise((resolve, reject) => {
        read(fd, buf, 0, buf.length, null, (err, bytesRead) => {
          if (err) {
            reject(new NativeError(`read of the evtchn device: ${err.message}`, { cause: err, errno: -(err.errno ?? 0), syscall: 'read' }));
            return;
          }
          const ports: number[] = [];
          for (let at = 0; at + 4 <= bytesRead; at += 4) ports.push(buf.readUInt32LE(at));
          resolve(ports);
        });
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
    close: () => closeSync(fd),
  };
}
