/**
 * NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT (proto.md
 * "Metadata querying"): which metadata contexts a query selects. We offer
 * one, `base:allocation`.
 *
 *  option data
 *  +-------------+------+-------------+-----------------------------+
 *  | name length | name | query count | query count x               |
 *  | u32         |      | u32         |   length u32, query string  |
 *  +-------------+------+-------------+-----------------------------+
 *
 *  reply (one per context, then NBD_REP_ACK)
 *  NBD_REP_META_CONTEXT: context id u32 (0 in a LIST), context name
 */
import * as C from './constants.js';

/** The id our one context gets in NBD_OPT_SET_META_CONTEXT (opaque to the client). */
export const ALLOCATION_CONTEXT_ID = 1;
const MAX_QUERIES = 64;

export interface MetaQuery {
  readonly exportName: string;
  readonly queries: readonly string[];
}

/** Parses the option data, or says why it is malformed (NBD_REP_ERR_INVALID). */
export function parseMetaQuery(data: Buffer): MetaQuery | string {
  if (data.length < 8) return 'too short';
  const nameLen = data.readUInt32BE(0);
  if (nameLen > 4096 || 4 + nameLen + 4 > data.length) return 'export name length out of bounds';
  const exportName = data.subarray(4, 4 + nameLen).toString('utf8');
  const count = data.readUInt32BE(4 + nameLen);
  if (count > MAX_QUERIES) return `more than ${MAX_QUERIES} queries`;
  const queries: string[] = [];
  let at = 4 + nameLen + 4;
  for (let i = 0; i < count; i++) {
    if (at + 4 > data.length) return 'query length runs past the option data';
    const len = data.readUInt32BE(at);
    if (len > 4096 || at + 4 + len > data.length) return 'query runs past the option data';
    queries.push(data.subarray(at + 4, at + 4 + len).toString('utf8'));
    at += 4 + len;
  }
  if (at !== data.length) return 'bytes left after the last query';
  return { exportName, queries };
}

/**
 * The contexts a query list names. LIST: no query, or the `base:`
 * wildcard, lists base:allocation; SET: only its exact name selects it
 * (the wildcard MUST be ignored there). Unknown namespaces and leaf names
 * are ignored, as the spec requires.
 */
export function selectContexts(queries: readonly string[], list: boolean): string[] {
  if (list && queries.length === 0) return [C.BASE_ALLOCATION];
  const hit = queries.some((q) => q === C.BASE_ALLOCATION || (list && q === 'base:'));
  return hit ? [C.BASE_ALLOCATION] : [];
}
