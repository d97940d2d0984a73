/**
 * A Readable over bytes [start, end] of a file, pulled in chunks by the
 * adapter's `pump`. One implementation for every adapter, with node's
 * createReadStream semantics (`end` inclusive) and backpressure.
 */
import { Readable } from 'node:stream';
import { FileSystemError } from './errors.js';
import { normalizeFsPath } from './paths.js';
import type { FileSystem, ReadStreamOptions } from './types.js';

export const CHUNK = 64 * 1024;

/**
 * `pump(path, start, endExclusive, push)` reads the range and calls `push`
 * per chunk; `push` resolves false once the stream is destroyed (the pump
 * then stops and releases what it holds).
 */
export function chunkedReadStream(
  fs: FileSystem,
  path: string,
  options: ReadStreamOptions,
  pump: (path: string, start: number, endExclusive: number, push: (b: Buffer) => Promise<boolean>) => Promise<void>,
): Readable {
  let started = false;
  let wake: (() => void) | undefined;
  const resume = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const stream = new Readable({
    highWaterMark: CHUNK,
    read() {
      resume();
      if (started) return;
      started = true;
      void (async () => {
        const p = normalizeFsPath(path);
        const st = await fs.stat(p);
        if (st.isDirectory()) throw new FileSystemError('is-a-directory', `${p} is a directory`, { path: p });
        const start = options.start ?? 0;
        const endExclusive = Math.min(st.size, options.end === undefined ? st.size : options.end + 1);
        await pump(p, start, endExclusive, async (b) => {
          if (stream.destroyed) return false;
          // Backpressure: wait for the next read() (or destroy) when the buffer is full.
          if (!stream.push(b)) await new Promise<void>((r) => (wake = r));
          return !stream.destroyed;
        });
        if (!stream.destroyed) stream.push(null);
      })().catch((err) => stream.destroy(err as Error));
    },
    destroy(err, cb) {
      resume(); // a pump waiting for room stops and closes its file
      cb(err);
    },
  });
  return stream;
}
