/**
 * Non-blocking reads of a character device driven by the event loop
 * (src/native/fd-poll.cc): the fd is watched with a uv_poll_t and read with
 * readSync only when the kernel says it is readable, so no thread ever sits
 * in a blocking read() (such a read cannot be cancelled, and libuv joins its
 * pool threads at exit: the process would never end).
 *
 *   readable -> readChunks() drains with readSync until EAGAIN
 *   stop()   -> the watcher is gone at once; close the fd after it
 *
 * `ref(false)` lets the process exit while the watcher waits (a socket's
 * unref()).
 */
import { readSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';
import { NativeError } from './errors.js';
import { loadAddon } from './load.js';

interface FdPollAddon {
  fdPollStart(fd: number, cb: (status: number, events: number) => void): number;
  fdPollRef(id: number, ref: boolean): void;
  fdPollStop(id: number): void;
}

function addon(): FdPollAddon {
  return loadAddon() as unknown as FdPollAddon;
}

export interface FdWatch {
  /** Whether the watcher keeps the event loop (the process) alive. */
  ref(on: boolean): void;
  /** Stop watching; the callback is not called again. Idempotent. */
  stop(): void;
}

/**
 * Watch `fd` for readability (the addon sets O_NONBLOCK on it). `onReadable`
 * runs on this thread's loop, with a NativeError when polling failed (the
 * watcher is then stopped).
 */
export function watchReadable(fd: number, onReadable: (err?: NativeError) => void): FdWatch {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw new InvalidArgumentError('fd', `not a file descriptor: ${fd}`);
  const a = addon();
  let stopped = false;
  let id: number;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    a.fdPollStop(id);
  };
  try {
    id = a.fdPollStart(fd, (status) => {
      if (stopped) return;
      if (status < 0) {
        stop();
        onReadable(new NativeError(`poll of fd ${fd} failed (libuv status ${status})`, { errno: -status, syscall: 'poll' }));
        return;
      }
      onReadable();
    });
  } catch (err) {
    const e = err as { message?: string; errno?: number; syscall?: string };
    throw new NativeError(`watching fd ${fd}: ${e?.message ?? String(err)}`, { cause: err, errno: e?.errno, syscall: e?.syscall });
  }
  return {
    ref: (on) => { if (!stopped) a.fdPollRef(id, on); },
    stop,
  };
}

/** One non-blocking read(): bytes read (0 = end of file), or `undefined` when nothing is there (EAGAIN). */
export function readNow(fd: number, buf: Uint8Array): number | undefined {
  try {
    return readSync(fd, buf, 0, buf.length, null);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK') return undefined;
    if (e.code === 'EINTR') return readNow(fd, buf);
    throw new NativeError(`read of fd ${fd}: ${e.message}`, { cause: err, errno: -(e.errno ?? 0), syscall: 'read' });
  }
}
