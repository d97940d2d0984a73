/**
 * Merging a batch of taken reads or writes into device calls, as a block
 * layer's plug does: requests that follow each other in the batch, go the
 * same way, and follow each other on disk become one call (one pread/
 * pwritev and one thread-pool hand-off instead of one each).
 *
 *   batch   R@0+2048  R@2048+2048  R@4096+2048  W@100+8  R@6144+2048
 *   groups  [R@0 ........................ +6144] [W@100] [R@6144]
 *
 * Order is kept (groups are runs of the batch as taken), so nothing is
 * reordered around another request of the same batch.
 */

export interface Mergeable {
  readonly write: boolean;
  /** Start on disk and length, in 512-byte units. */
  readonly sector512: bigint;
  readonly total512: number;
}

/** Most requests one device call may carry (bounds the iovec and the error's blast radius). */
export const MAX_MERGE = 16;

export function mergeAdjacent<T extends Mergeable>(batch: readonly T[], maxGroup = MAX_MERGE): T[][] {
  const groups: T[][] = [];
  let cur: T[] = [];
  let end = 0n;
  for (const r of batch) {
    const last = cur[cur.length - 1];
    if (last && last.write === r.write && end === r.sector512 && cur.length < maxGroup) {
      cur.push(r);
    } else {
      if (cur.length > 0) groups.push(cur);
      cur = [r];
    }
    end = r.sector512 + BigInt(r.total512);
  }
  if (cur.length > 0) groups.push(cur);
  return groups;
}
