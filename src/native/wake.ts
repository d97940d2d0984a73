/**
 * One-byte event wakes on a FIFO without fs.writeSync / fs.readSync's
 * per-call overhead (src/native/wake.cc): the bare write(fd, &1, 1) and a
 * blocking read(fd, buf, 64). Used by event ports whose peer is a foreign
 * process (tools/bench/cross-thread/control.ts).
 */
import { InvalidArgumentError } from '../errors.js';
import { NativeError } from './errors.js';
import { loadAddon } from './load.js';

interface WakeAddon {
  fdWriteByte(fd: number): number;
  fdReadBytes(fd: number): number;
}

function checkFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw new InvalidArgumentError('fd', `not a file descriptor: ${fd}`);
}

function wrap(what: string, fd: number, err: unknown): NativeError {
  const e = err as { message?: string; errno?: number; syscall?: string };
  return new NativeError(`${what} of fd ${fd}: ${e?.message ?? String(err)}`, { cause: err, errno: e?.errno, syscall: e?.syscall });
}

/** The raw functions, argument-checked, for a hot loop: bind once, call many times. */
export interface FdWaker {
  /** write(fd, &1, 1): returns 1; NativeError (errno EBADF, EAGAIN, ...) on failure. */
  writeByte(fd: number): number;
  /** Blocking read of up to 64 bytes: bytes taken (0 = end of file); NativeError on failure. */
  readBytes(fd: number): number;
}

/** Load the addon (NativeError with a build hint when it is missing) and return the wake calls. */
export function fdWaker(): FdWaker {
  const a = loadAddon() as unknown as WakeAddon;
  return {
    writeByte(fd) {
      checkFd(fd);
      try { return a.fdWriteByte(fd); } catch (err) { throw wrap('one-byte write', fd, err); }
    },
    readBytes(fd) {
      checkFd(fd);
      try { return a.fdReadBytes(fd); } catch (err) { throw wrap('read', fd, err); }
    },
  };
}
