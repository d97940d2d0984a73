/**
 * The two LVM-specific errors. Everything else the LVM layer reports is one
 * of the shared errors of src/errors.ts (`invalid-argument` for a device
 * that is not a PV or an unknown LV name, `unsupported` for LV types we do
 * not map, `read-only`, `io`).
 */
import { XenpvError } from '../errors.js';

/** Where on the PV the malformed structure was found. */
export type MetadataPart = 'label' | 'pv_header' | 'mda_header' | 'metadata';

/** An on-disk LVM2 structure is malformed: bad checksum, bad magic, truncated or inconsistent text. */
export class CorruptMetadataError extends XenpvError {
  readonly part: MetadataPart;
  constructor(part: MetadataPart, message: string, options?: { cause?: unknown }) {
    super('corrupt', `${part}: ${message}`, options);
    this.part = part;
  }
}

/** Not enough room: free extents for an LV, or metadata-area space for new metadata text. */
export class NoSpaceError extends XenpvError {
  constructor(message: string) {
    super('no-space', message);
  }
}
