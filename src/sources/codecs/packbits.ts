/**
 * PackBits (compression 32773, TIFF 6.0 Section 9): a signed header byte n, then n+1 literal
 * bytes for 0..127, one byte repeated 1-n times for -127..-1, nothing for -128.
 */
import { SourceError } from '../../errors.js';
import { outputSize, type OwnedBytes } from './output.js';

export function decodePackBits(src: Uint8Array, expected: number): OwnedBytes {
  const end = src.length;
  // At most 128 bytes from every two (a repeat run of 1-(-127)): the stream ends early, below.
  const out = new Uint8Array(outputSize(expected, Math.ceil(end / 2) * 128));
  let ip = 0;
  let op = 0;
  while (op < expected) {
    if (ip >= end) {
      throw new SourceError(`PackBits stream ended early: decoded ${op} of ${expected} bytes`);
    }
    const n = src[ip++];
    if (n < 128) {
      let count = n + 1;
      if (ip + count > end) {
        throw new SourceError(`PackBits stream ended early: literal run of ${count} bytes at offset ${ip - 1} overruns the ${end}-byte block`);
      }
      // A run may cross the end of the block; libtiff drops the excess too.
      if (count > expected - op) count = expected - op;
      if (count > 16) {
        out.set(src.subarray(ip, ip + count), op);
      } else {
        for (let i = 0; i < count; i++) out[op + i] = src[ip + i];
      }
      ip += n + 1;
      op += count;
    } else if (n > 128) {
      if (ip >= end) {
        throw new SourceError(`PackBits stream ended early: repeat run at offset ${ip - 1} has no data byte`);
      }
      let count = 257 - n;
      if (count > expected - op) count = expected - op;
      out.fill(src[ip++], op, op + count);
      op += count;
    }
    // n === 128 is a no-op by definition.
  }
  return out;
}
