/**
 * A `multipart/byteranges` body (RFC 9110 section 14.6 and appendix;
 * the multipart syntax of RFC 2046 section 5.1.1), for a 206 answering
 * several ranges:
 *
 *   --BOUNDARY CRLF                          <- first part: no CRLF before it
 *   Content-Type: text/html CRLF
 *   Content-Range: bytes 0-9/1234 CRLF
 *   CRLF
 *   <bytes 0..9 of the file>
 *   CRLF --BOUNDARY CRLF                     <- each further part
 *   Content-Type: text/html CRLF
 *   Content-Range: bytes 20-29/1234 CRLF
 *   CRLF
 *   <bytes 20..29>
 *   CRLF --BOUNDARY-- CRLF                   <- close delimiter
 *
 * The CRLF before each delimiter belongs to the delimiter, not to the
 * data. Every head is known before a byte is read, so Content-Length is
 * exact and HEAD can give it without reading the file.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ByteRange } from './range.js';

export interface MultipartPlan {
  /** For the Content-Type header: `multipart/byteranges; boundary=...`. */
  readonly contentType: string;
  readonly contentLength: number;
  /** Yields the whole body, reading each range through `open`. */
  body(open: (range: ByteRange) => Readable): AsyncGenerator<Buffer>;
}

export function planMultipart(ranges: readonly ByteRange[], size: number, partType: string): MultipartPlan {
  // 24 random hex digits: a boundary that will not occur in the data by chance.
  const boundary = randomBytes(12).toString('hex');
  const heads = ranges.map((r, i) =>
    Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${partType}\r\nContent-Range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`, 'latin1'));
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  const contentLength = heads.reduce((n, h, i) => n + h.length + ranges[i]!.end - ranges[i]!.start + 1, tail.length);
  return {
    contentType: `multipart/byteranges; boundary=${boundary}`,
    contentLength,
    async *body(open) {
      for (let i = 0; i < ranges.length; i++) {
        yield heads[i]!;
        // for-await destroys the stream if the consumer stops early (client gone).
        for await (const chunk of open(ranges[i]!)) yield chunk as Buffer;
      }
      yield tail;
    },
  };
}
