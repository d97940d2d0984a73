/**
 * The backing store of a simulated disk, prepared before its backend domain
 * starts:
 *   - a regular file: created sparse with `sizeBytes` if missing, grown to
 *     it if smaller (never shrunk); without `sizeBytes` it must exist;
 *   - a host block device (/dev/loop0, an LV): used as it is, its size read
 *     from the device (BLKGETSIZE64, else sysfs); a `sizeBytes` given must
 *     match it, since a block device cannot be resized;
 *   - anything else: `invalid-argument`.
 * `key` (the real path) identifies the store, so one simulation never
 * serves one store twice.
 */
import { realpath, stat } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { blockDeviceSize, toIoError } from '../block/file-io.js';
import { InvalidArgumentError } from '../errors.js';
import { storageAddon } from '../native/storage.js';

export interface Backing {
  readonly key: string;
  readonly kind: 'regular' | 'block-device';
  readonly sizeBytes: number;
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path, { bigint: true });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw toIoError(err, `stat ${path}`);
  }
}

async function blockDeviceBytes(path: string, rdev: bigint): Promise<bigint> {
  const addon = storageAddon();
  if (!addon) return blockDeviceSize(rdev);
  const h = await open(path, 'r').catch((err: unknown) => {
    throw toIoError(err, `open ${path}`);
  });
  try {
    return addon.blkGetSize64(h.fd);
  } catch (err) {
    throw toIoError(err, `size of block device ${path}`);
  } finally {
    await h.close();
  }
}

export async function prepareBacking(path: string, sizeBytes: number | undefined): Promise<Backing> {
  const st = await statOrUndefined(path);
  if (st?.isBlockDevice()) {
    const bytes = await blockDeviceBytes(path, st.rdev);
    if (bytes === 0n || bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidArgumentError('path', `block device ${path} has ${bytes} bytes`);
    if (sizeBytes !== undefined && BigInt(sizeBytes) !== bytes) {
      throw new InvalidArgumentError('sizeBytes', `${sizeBytes} differs from the size of block device ${path} (${bytes} bytes); omit it`);
    }
    return { key: await realpath(path), kind: 'block-device', sizeBytes: Number(bytes) };
  }
  if (st && !st.isFile()) throw new InvalidArgumentError('path', `${path} is neither a regular file nor a block device`);
  if (sizeBytes === undefined) {
    if (!st) throw new InvalidArgumentError('sizeBytes', `required: ${path} does not exist`);
    return { key: await realpath(path), kind: 'regular', sizeBytes: Number(st.size) };
  }
  const h = await open(path, 'a+').catch((err: unknown) => {
    throw toIoError(err, `create ${path}`);
  });
  try {
    if ((await h.stat()).size < sizeBytes) await h.truncate(sizeBytes);
  } catch (err) {
    throw toIoError(err, `size ${path} to ${sizeBytes} bytes`);
  } finally {
    await h.close();
  }
  return { key: await realpath(path), kind: 'regular', sizeBytes };
}
