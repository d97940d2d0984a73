/**
 * The FAT operations fatfs 0.10.8 does not have, done by us on the same
 * device: unlink, rmdir, rename, and zero-length files (first cluster 0,
 * size 0, as the FAT spec wants an empty file). Each call is one
 * operation with its own FatTable and directory reads, so it never works
 * from state older than itself; the caller (fat.ts) runs it alone and then
 * reopens fatfs, whose caches it has made stale.
 *
 * Order of writes, everywhere: a name is removed before the clusters it
 * owned are freed, and a new name is written before the old one is
 * removed. A crash in between leaves lost clusters or a second name for the
 * same data (fsck.fat repairs either), never a name on freed clusters.
 */
import type { SectorIo } from './byte-disk.js';
import { FileSystemError } from './errors.js';
import type { FatGeometry } from './fat-boot.js';
import { entryFields, FatDirectory, withContent, type DirRecord } from './fat-dir.js';
import { checkLongName } from './fat-names.js';
import { FatTable } from './fat-table.js';
import { splitFsPath } from './paths.js';

const ATTR_ARCHIVE = 0x20;

/** One operation's view: the FAT and each directory read once, shared by every step. */
class Op {
  readonly table: FatTable;
  private readonly dirs = new Map<number, Promise<FatDirectory>>();

  constructor(private readonly io: SectorIo, readonly geo: FatGeometry) {
    this.table = new FatTable(io, geo);
  }

  /** The directory at `cluster` (0, or the FAT32 root cluster: the root). */
  dir(cluster: number): Promise<FatDirectory> {
    const key = cluster === this.geo.rootCluster ? 0 : cluster;
    let d = this.dirs.get(key);
    if (d === undefined) this.dirs.set(key, (d = FatDirectory.open(this.io, this.table, key)));
    return d;
  }

  /** Cluster to store in '..' or to open for a directory entry (the root is 0). */
  static dirCluster(r: DirRecord, path: string): number {
    if (r.cluster < 2) throw new FileSystemError('corrupt', `the directory ${path} has first cluster ${r.cluster}`, { path });
    return r.cluster;
  }

  /**
   * Walks `path`'s parent from the root. Returns the parent directory, the
   * last name, its record (if any), and the clusters of every directory on
   * the way (to refuse moving a directory into itself).
   */
  async resolve(path: string): Promise<{ parent: FatDirectory; name: string; rec: DirRecord | undefined; ancestors: number[] }> {
    const [parentPath, name] = splitFsPath(path);
    let dir = await this.dir(0);
    const ancestors = [0];
    let walked = '';
    for (const part of parentPath.split('/').filter((p) => p !== '')) {
      walked += `/${part}`;
      const r = dir.find(part);
      if (r === undefined) throw new FileSystemError('not-found', `${walked} does not exist`, { path });
      if (!r.isDirectory) throw new FileSystemError('not-a-directory', `${walked} is not a directory`, { path });
      const c = Op.dirCluster(r, walked);
      ancestors.push(c);
      dir = await this.dir(c);
    }
    return { parent: dir, name, rec: dir.find(name), ancestors };
  }
}

export class FatOps {
  /** `io` is where every write goes (fat.ts wraps the disk to know one happened). */
  constructor(private readonly io: SectorIo, private readonly geo: FatGeometry) {}

  private op(): Op {
    return new Op(this.io, this.geo);
  }

  async unlink(path: string): Promise<void> {
    if (path === '/') throw new FileSystemError('is-a-directory', '/ is a directory', { path });
    const op = this.op();
    const { parent, rec } = await op.resolve(path);
    if (rec === undefined) throw new FileSystemError('not-found', `${path} does not exist`, { path });
    if (rec.isDirectory) throw new FileSystemError('is-a-directory', `${path} is a directory`, { path });
    const chain = await op.table.chain(rec.cluster); // checked whole before anything changes
    await parent.remove(rec);
    await op.table.free(chain);
    await op.table.flush();
  }

  async rmdir(path: string): Promise<void> {
    if (path === '/') throw new FileSystemError('invalid-path', 'the root directory cannot be removed', { path });
    const op = this.op();
    const { parent, rec } = await op.resolve(path);
    if (rec === undefined) throw new FileSystemError('not-found', `${path} does not exist`, { path });
    if (!rec.isDirectory) throw new FileSystemError('not-a-directory', `${path} is not a directory`, { path });
    const c = Op.dirCluster(rec, path);
    if (!(await op.dir(c)).isEmpty()) throw new FileSystemError('not-empty', `${path} is not empty`, { path });
    const chain = await op.table.chain(c);
    await parent.remove(rec);
    await op.table.free(chain);
    await op.table.flush();
  }

  /**
   * POSIX rename: the entry moves (same cluster chain, times and
   * attributes; a new 8.3 name and long name); an existing target file, or
   * an empty target directory when a directory moves, is replaced.
   */
  async rename(from: string, to: string): Promise<void> {
    if (from === '/' || to === '/') throw new FileSystemError('invalid-path', 'the root directory cannot be renamed or replaced', { path: from });
    const op = this.op();
    const src = await op.resolve(from);
    if (src.rec === undefined) throw new FileSystemError('not-found', `${from} does not exist`, { path: from });
    const dst = await op.resolve(to);
    checkLongName(dst.name, to);
    const moving = src.rec;
    if (moving.isDirectory && dst.ancestors.includes(Op.dirCluster(moving, from))) {
      throw new FileSystemError('invalid-path', `${from} cannot move into itself (${to})`, { path: from });
    }
    const sameEntry = dst.parent === src.parent && dst.rec?.slot === moving.slot;
    if (sameEntry && dst.rec!.name === dst.name) return; // the very same name: nothing to do
    const target = sameEntry ? undefined : dst.rec;
    let targetChain: number[] = [];
    if (target !== undefined) {
      if (!moving.isDirectory && target.isDirectory) throw new FileSystemError('is-a-directory', `${to} is a directory`, { path: to });
      if (moving.isDirectory && !target.isDirectory) throw new FileSystemError('not-a-directory', `${to} is not a directory`, { path: to });
      if (target.isDirectory && !(await op.dir(Op.dirCluster(target, to))).isEmpty()) throw new FileSystemError('not-empty', `${to} is not empty`, { path: to });
      targetChain = await op.table.chain(target.cluster);
    }
    // 1. the target's name goes (its clusters stay until step 4)
    if (target !== undefined) await dst.parent.remove(target);
    // 2. the new name, then (a directory changing parent) its '..'
    await dst.parent.add(dst.name, moving.raw);
    if (moving.isDirectory && dst.parent !== src.parent) {
      await (await op.dir(moving.cluster)).setDotDot(dst.parent.firstCluster === this.geo.rootCluster ? 0 : dst.parent.firstCluster);
    }
    // 3. the old name
    await src.parent.remove(moving);
    // 4. the replaced target's clusters
    await op.table.free(targetChain);
    await op.table.flush();
  }

  /** writeFile with no bytes: a new entry with cluster 0, or an existing file cut to 0 (its clusters freed). */
  async writeEmpty(path: string): Promise<void> {
    if (path === '/') throw new FileSystemError('is-a-directory', '/ is a directory', { path });
    const op = this.op();
    const { parent, name, rec } = await op.resolve(path);
    if (rec === undefined) {
      checkLongName(name, path);
      await parent.add(name, entryFields(ATTR_ARCHIVE, 0, 0));
      return;
    }
    if (rec.isDirectory) throw new FileSystemError('is-a-directory', `${path} is a directory`, { path });
    const chain = await op.table.chain(rec.cluster);
    await parent.update(rec, withContent(rec.raw, 0, 0)); // the entry first, then the clusters
    await op.table.free(chain);
    await op.table.flush();
  }

  /**
   * Before fatfs writes bytes into an existing file: an empty file (cluster
   * 0) is removed, since fatfs would follow cluster 0 into the FAT area.
   * fatfs then creates the file afresh. True when the device changed.
   */
  async prepareWrite(path: string): Promise<boolean> {
    if (path === '/') return false;
    const op = this.op();
    const { parent, name, rec } = await op.resolve(path);
    if (rec === undefined) {
      checkLongName(name, path);
      return false;
    }
    if (rec.isDirectory || rec.cluster !== 0) return false;
    await parent.remove(rec);
    return true;
  }

  /** Checks a name fatfs is about to create (mkdir). */
  async checkCreate(path: string): Promise<void> {
    if (path === '/') return;
    const { name, rec } = await this.op().resolve(path);
    if (rec === undefined) checkLongName(name, path);
  }
}
