/**
 * DEFLATE (zlib stream, compression 8 from the Adobe TIFF supplement and the
 * older 32946 code use the same format), inflated by Node's zlib.
 */
import { inflateSync } from 'node:zlib';
import { SourceError } from '../../errors.js';
import { errorMessage, maxDecodedBytes, outputSize, owned, shortBlock, type OwnedBytes } from './output.js';

/** DEFLATE's largest expansion: a 258-byte match in two bits (RFC 1951's longest match, one-bit codes). */
const DEFLATE_MAX_RATIO = 1032;

export function inflate(bytes: Uint8Array, expected: number, scratch: boolean): OwnedBytes {
  let out: Uint8Array;
  try {
    out = inflateSync(bytes, {
      // One output chunk of the expected size: for blocks of 4 KiB or more
      // Node then allocates one unpooled buffer we can keep as is. Filling it
      // exactly also makes Node allocate a second chunk, only to find the stream
      // ended; one byte more avoids that, where the buffer may be longer. Node
      // allocates the chunk before it inflates a byte: no more than the data can fill.
      chunkSize: Math.max(outputSize(scratch ? expected + 1 : expected, bytes.length * DEFLATE_MAX_RATIO), 64),
      maxOutputLength: maxDecodedBytes(expected),
    });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new SourceError(`DEFLATE block decodes to more than ${maxDecodedBytes(expected)} bytes, expected ${expected}`);
    }
    throw new SourceError(`DEFLATE decode failed: ${errorMessage(err)}`);
  }
  if (out.length < expected) throw shortBlock('DEFLATE', out.length, expected);
  if (scratch && out.byteOffset === 0 && out.buffer instanceof ArrayBuffer) return new Uint8Array(out.buffer, 0, expected);
  return owned(out, expected);
}
