/**
 * Status codes returned across the engine boundary (both engines), and the
 * one function that turns a non-zero status into an error. The Wasm side
 * spells the same numbers in assembly/status.ts; a test checks they agree.
 */
import { InvalidArgumentError, ProtocolError, XenpvError } from '../errors.js';

export const enum BlkifStatus {
  OK = 0,
  // ---- request validation (host or peer built a bad request) ----
  BAD_OPERATION = -1,
  BAD_NR_SEGMENTS = -2,
  BAD_SECTOR_RANGE = -3, // first_sect > last_sect or last_sect > 7
  BAD_INDIRECT_OP = -4,
  BAD_INDIRECT_NR_SEGMENTS = -5, // 0, or more than 8 pages of 512
  BAD_ABI = -6,
  BAD_DISCARD_FLAG = -7,
  BAD_ID = -8, // id ≥ nrEnts (front ids index the shadow table)
  ID_IN_FLIGHT = -9, // id already in flight (front write)
  // ---- response / ring validation (the peer broke the protocol) ----
  RSP_PROD_OVERFLOW = -20,
  RSP_BAD_ID = -21,
  RSP_NOT_IN_FLIGHT = -22, // id not in flight: duplicate or invented response
  RSP_BAD_OPERATION = -23,
  RSP_BAD_STATUS = -24,
  REQ_PROD_OVERFLOW = -25,
  // ---- ring setup / grants ----
  BAD_RING_PAGES = -30,
  BAD_SLOT_SIZE = -31,
  GRANT_BUSY = -40, // end access refused: peer has it mapped (reading/writing)
  GREF_NOT_OURS = -41,
  GREF_ALREADY_FREE = -42,
}

const MESSAGES: Record<number, string> = {
  [BlkifStatus.BAD_OPERATION]: 'unknown operation',
  [BlkifStatus.BAD_NR_SEGMENTS]: 'nr_segments out of range (1..11 for read/write)',
  [BlkifStatus.BAD_SECTOR_RANGE]: 'segment needs first_sect <= last_sect <= 7',
  [BlkifStatus.BAD_INDIRECT_OP]: 'indirect_op must be read or write',
  [BlkifStatus.BAD_INDIRECT_NR_SEGMENTS]: 'indirect nr_segments must be 1..4096 (8 pages of 512)',
  [BlkifStatus.BAD_ABI]: 'unknown ABI',
  [BlkifStatus.BAD_DISCARD_FLAG]: 'discard flag must be 0 or 1 (secure)',
  [BlkifStatus.BAD_ID]: 'request id out of range for the shadow table',
  [BlkifStatus.ID_IN_FLIGHT]: 'request id already in flight',
  [BlkifStatus.RSP_PROD_OVERFLOW]: 'rsp_prod is past the ring',
  [BlkifStatus.RSP_BAD_ID]: 'response id out of range',
  [BlkifStatus.RSP_NOT_IN_FLIGHT]: 'response id not in flight (duplicate or invented)',
  [BlkifStatus.RSP_BAD_OPERATION]: 'response operation does not match the request',
  [BlkifStatus.RSP_BAD_STATUS]: 'response status out of range',
  [BlkifStatus.REQ_PROD_OVERFLOW]: 'req_prod is past the ring',
  [BlkifStatus.BAD_RING_PAGES]: 'ring must be 1..16 pages (order 0..4), power of two',
  [BlkifStatus.BAD_SLOT_SIZE]: 'slot size does not fit the ring',
  [BlkifStatus.GRANT_BUSY]: 'grant is still mapped by the peer',
  [BlkifStatus.GREF_NOT_OURS]: 'grant reference not from this free list',
  [BlkifStatus.GREF_ALREADY_FREE]: 'grant reference already free',
};

/** Human text for a status. */
export function statusMessage(status: number): string {
  return MESSAGES[status] ?? `status ${status}`;
}

/**
 * The one place a status becomes an error. Response-side codes (≤ −20 and
 * > −30) are the peer's fault: `protocol`. Everything else was a bad argument
 * from our own caller: `invalid-argument`, naming `field`.
 */
export function statusToError(status: number, field = 'request'): XenpvError {
  if (status <= -20 && status > -30) return new ProtocolError(statusMessage(status));
  return new InvalidArgumentError(field, statusMessage(status));
}
