/**
 * `blkif` namespace of the package root: the convenience codec and the wire
 * constants. `import { blkif } from 'xenpv'; blkif.encodeRequest(...)`.
 */
export {
  encodeRequest, decodeRequest, encodeResponse, decodeResponse, REQUEST_SLOT_BYTES,
  type BlkifAbi, type BlkifSegment, type BlkifSegmentRequest, type BlkifDiscardRequest,
  type BlkifIndirectRequest, type BlkifRequest, type BlkifResponse,
} from './codec.js';
export * from './constants.js';
