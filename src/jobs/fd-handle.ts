/**
 * A FileHandle over a descriptor this process inherited (the master opened
 * the file and passed it at spawn; Node has no public way to wrap a number
 * in a FileHandle). It implements exactly what FileBlockDevice uses: `fd`
 * (positional reads and writes go through node:fs on it), `stat`,
 * `datasync`, `truncate`, `close`.
 */
import { close, fdatasync, fstat, ftruncate, type BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';

const fstatP = promisify(fstat) as unknown as (fd: number, o: { bigint: true }) => Promise<BigIntStats>;
const fdatasyncP = promisify(fdatasync);
const ftruncateP = promisify(ftruncate);
const closeP = promisify(close);

export function inheritedHandle(fd: number): FileHandle {
  let closed = false;
  const handle = {
    fd,
    stat: () => fstatP(fd, { bigint: true }),
    datasync: () => fdatasyncP(fd),
    truncate: (len?: number) => ftruncateP(fd, len ?? 0),
    close: async () => {
      if (closed) return;
      closed = true;
      await closeP(fd);
    },
  };
  return handle as unknown as FileHandle;
}
