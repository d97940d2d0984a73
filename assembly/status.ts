/**
 * Status codes returned by every export. The same numbers as BlkifStatus in
 * src/ring/status.ts (a vitest checks they agree); the host turns a non-zero
 * status into an error in exactly one place (statusToError).
 * AssemblyScript has no exceptions: nothing here aborts on peer data.
 */
@inline export const OK: i32 = 0;
// ---- request validation (host or peer built a bad request) ----
@inline export const BAD_OPERATION: i32 = -1;
@inline export const BAD_NR_SEGMENTS: i32 = -2;
@inline export const BAD_SECTOR_RANGE: i32 = -3;
@inline export const BAD_INDIRECT_OP: i32 = -4;
@inline export const BAD_INDIRECT_NR_SEGMENTS: i32 = -5;
@inline export const BAD_ABI: i32 = -6;
@inline export const BAD_DISCARD_FLAG: i32 = -7;
@inline export const BAD_ID: i32 = -8;
@inline export const ID_IN_FLIGHT: i32 = -9;
// ---- response / ring validation (the peer broke the protocol) ----
@inline export const RSP_PROD_OVERFLOW: i32 = -20;
@inline export const RSP_BAD_ID: i32 = -21;
@inline export const RSP_NOT_IN_FLIGHT: i32 = -22;
@inline export const RSP_BAD_OPERATION: i32 = -23;
@inline export const RSP_BAD_STATUS: i32 = -24;
@inline export const REQ_PROD_OVERFLOW: i32 = -25;
// ---- ring setup / grants ----
@inline export const BAD_RING_PAGES: i32 = -30;
@inline export const BAD_SLOT_SIZE: i32 = -31;
@inline export const GRANT_BUSY: i32 = -40;
@inline export const GREF_NOT_OURS: i32 = -41;
@inline export const GREF_ALREADY_FREE: i32 = -42;
