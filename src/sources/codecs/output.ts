/**
 * What every decompressor returns, and the limits and errors they share. Each returns exactly
 * `expected` bytes in a Uint8Array that owns its ArrayBuffer from offset 0 (so any typed view
 * of it is aligned), or with `scratch`, that sits 16-byte aligned in a buffer that may be longer.
 */
import { SourceError } from '../../errors.js';

export type OwnedBytes = Uint8Array<ArrayBuffer>;

/**
 * The most bytes one block may decode to: a 4096² block of four Float32 bands, all that the
 * default BLOCK_CACHE_MB holds. The block size is the file's word and a decoder allocates it
 * before it decodes a byte, so a larger one is refused up front.
 */
export const MAX_BLOCK_BYTES = 256 * 1024 * 1024;

/**
 * How much a DEFLATE or ZSTD stream may decode to, as a guard against
 * decompression bombs. More than the block needs is tolerated because some
 * writers pad the last strip to a full RowsPerStrip (Section 3 allows a
 * short one but does not require it); the excess is ignored.
 */
export function maxDecodedBytes(expected: number): number {
  return Math.min(Math.max(expected * 16, expected + 0x10000), MAX_BLOCK_BYTES);
}

/**
 * How much of a block to allocate: the block, or less when the compressed bytes could not fill
 * it even at the codec's largest expansion (`most`, from the size of the data alone). The
 * block size is the file's word: a 100-byte block whose TileWidth and TileLength say 32768
 * would otherwise have 1 GiB allocated before its decoder finds it short.
 */
export function outputSize(expected: number, most: number): number {
  return Math.min(expected, most);
}

export function shortBlock(codec: string, got: number, expected: number): SourceError {
  return new SourceError(`${codec} block decodes to ${got} bytes, expected ${expected} (truncated or corrupt data)`);
}

/** Returns `data` itself when it already owns its buffer exactly, else a copy of its first `expected` bytes. */
export function owned(data: Uint8Array, expected: number): OwnedBytes {
  if (data.byteOffset === 0 && data.length === expected && data.buffer.byteLength === expected && data.buffer instanceof ArrayBuffer) {
    return data as OwnedBytes;
  }
  const out = new Uint8Array(expected);
  out.set(data.length === expected ? data : data.subarray(0, expected));
  return out;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
