/**
 * DEFLATE (zlib stream, compression 8 from the Adobe TIFF supplement and the
 * older 32946 code use the same format), inflated by libdeflate (src/kernels.ts) when the
 * block decodes to exactly its size, else by Node's zlib, which also says what is wrong
 * with a stream libdeflate refuses.
 */
import { inflateSync } from 'node:zlib';
import { SourceError } from '../../errors.js';
import { inflateInto, inflateScratch } from '../../kernels.js';
import { errorMessage, maxDecodedBytes, outputSize, owned, shortBlock, type OwnedBytes } from './output.js';

/** DEFLATE's largest expansion: a 258-byte match in two bits (RFC 1951's longest match, one-bit codes). */
const DEFLATE_MAX_RATIO = 1032;

/**
 * Blocks of at most this many bytes are inflated, as scratch, into one buffer this thread
 * keeps: a fresh megabyte a block is a megabyte of pages the kernel maps and zeroes.
 */
const MAX_SCRATCH_BYTES = 4 * 2 ** 20;
let scratchBuffer: Buffer<ArrayBuffer> | undefined;

export function inflate(bytes: Uint8Array, expected: number, scratch: boolean): OwnedBytes {
  // Whole-buffer: only when the data could fill the block, into memory it then owns from offset 0 (or this thread's scratch).
  if (outputSize(expected, bytes.length * DEFLATE_MAX_RATIO) === expected) {
    let whole: Uint8Array<ArrayBuffer> | undefined;
    if (scratch) {
      // Where the predictor kernel reads, else this thread's buffer.
      whole = inflateScratch(expected);
      if (!whole && expected <= MAX_SCRATCH_BYTES) {
        if (!scratchBuffer || scratchBuffer.length < expected) scratchBuffer = Buffer.allocUnsafeSlow(expected);
        whole = scratchBuffer;
      }
    }
    whole ??= Buffer.allocUnsafeSlow(expected);
    const n = inflateInto(bytes, whole);
    // Every byte written (a shorter stream is Node's to report): none of the unset memory remains.
    if (n === expected) return whole.subarray(0, expected);
  }
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
