/**
 * Transactions: a private copy of the store taken at TRANSACTION_START
 * (isolation: nothing committed later is seen inside), the set of paths the
 * transaction read or wrote (and the ancestors it relied on), and a log of its changes. At commit, if any
 * touched node's generation differs between the start snapshot and the live
 * store, someone else changed it: EAGAIN. Otherwise the log is replayed on a
 * copy of the live store, which replaces it only if every step succeeds.
 */
import type { Db } from './tree.js';
import type { OpContext } from './ops.js';

export type LoggedOp = (ctx: OpContext) => void;

export class Transaction {
  /** The store as it was at start; never written. */
  readonly base: Db;
  /** The transaction's working copy. */
  readonly db: Db;
  /** Nodes read or written: their generation must not change. */
  readonly touched = new Set<string>();
  /** Ancestors relied on only to exist with the same permissions (a sibling's creation is no conflict). */
  readonly relied = new Set<string>();
  readonly log: LoggedOp[] = [];

  constructor(readonly id: number, live: Db) {
    this.base = live.clone();
    this.db = live.clone();
  }

  conflictsWith(live: Db): boolean {
    for (const p of this.touched) if (this.base.genOf(p) !== live.genOf(p)) return true;
    // Permission arrays are replaced only by SET_PERMS or re-creation: identity tells.
    for (const p of this.relied) if (this.base.get(p)?.perms !== live.get(p)?.perms) return true;
    return false;
  }
}
