/**
 * Per-domain / per-connection limits, with xenstored's defaults. Errors
 * follow C xenstored: node and entry limits ENOSPC, watches E2BIG,
 * transactions ENOSPC. Dom0 is exempt from the node limit.
 */
export interface XsQuota {
  /** Nodes an unprivileged domain may own. */
  nodesPerDomain: number;
  /** Largest value (bytes) an unprivileged domain may store. */
  entrySize: number;
  watchesPerConnection: number;
  transactionsPerConnection: number;
  /**
   * Bytes of replies and watch events queued for a connection that is not
   * reading; past this the connection is closed (a peer can stall only itself).
   */
  outputBytesPerConnection: number;
}

export const DEFAULT_QUOTA: XsQuota = {
  nodesPerDomain: 1000,
  entrySize: 2048,
  watchesPerConnection: 128,
  transactionsPerConnection: 10,
  outputBytesPerConnection: 1 << 20,
};
