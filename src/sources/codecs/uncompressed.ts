/** Compression 1 (TIFF 6.0 Section 3): the samples as they are stored. */
import { shortBlock, type OwnedBytes } from './output.js';

export function copyUncompressed(bytes: Uint8Array, expected: number): OwnedBytes {
  if (bytes.length < expected) throw shortBlock('uncompressed', bytes.length, expected);
  // Always copy: the predictor and byte swapping work in place and the
  // caller's buffer (often a slice of a larger range read) must not change.
  const out = new Uint8Array(expected);
  out.set(bytes.length === expected ? bytes : bytes.subarray(0, expected));
  return out;
}
