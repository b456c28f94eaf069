/**
 * LZW (compression 5, TIFF 6.0 Section 13). Codes are written MSB-first, start 9 bits wide,
 * and widen one code *early* (TIFF 6.0 encoders switch to N+1 bits when the next free
 * code reaches 2^N - 1, not 2^N). Code 256 clears the table, 257 ends the
 * strip, new entries start at 258, and widths stop at 12 bits.
 *
 * Every table entry is "previous string + first byte of the current one",
 * and the previous string is always followed in the output by the current
 * one, so each entry is a substring of the output already decoded: the
 * table stores only (offset, length) into the output and decoding a code is
 * a copy within the output. No per-code strings or allocations.
 */
import { SourceError } from '../../errors.js';
import { outputSize, type OwnedBytes } from './output.js';

const LZW_CLEAR = 256;
const LZW_EOI = 257;
const LZW_FIRST = 258;
const LZW_MAX_BITS = 12;
const LZW_TABLE_SIZE = 1 << LZW_MAX_BITS;
// The table is module-level and reused, which is safe because decoding is synchronous.
const lzwOffset = new Int32Array(LZW_TABLE_SIZE);
const lzwLength = new Int32Array(LZW_TABLE_SIZE);

export function decodeLzw(src: Uint8Array, expected: number): OwnedBytes {
  const n = src.length;
  if (n >= 2 && src[0] === 0 && (src[1] & 1) !== 0) {
    // The pre-6.0 "compat" flavour is LSB-first and starts 0x00 0x01
    // (libtiff's detection); a 6.0 stream starts with the 9-bit clear code.
    throw new SourceError('unsupported old-style (LSB-first, pre TIFF 6.0) LZW stream');
  }
  // Codes are at least 9 bits, and a new table entry is at most one byte longer than the
  // longest before it, so the k-th code after a Clear yields at most k bytes, and no code more
  // than the longest entry (under 4096 bytes). A stream that cannot fill the block ends early.
  const codes = Math.floor((n * 8) / 9);
  const out = new Uint8Array(outputSize(expected, codes < LZW_TABLE_SIZE ? (codes * (codes + 1)) / 2 : codes * LZW_TABLE_SIZE));
  const end = out.length;
  const offsets = lzwOffset;
  const lengths = lzwLength;
  let ip = 0;
  let op = 0;
  let acc = 0; // bit accumulator; only its low `bits` bits are meaningful
  let bits = 0;
  let codeLen = 9;
  let next = LZW_FIRST;
  let prevPos = 0;
  let prevLen = 0; // 0: no previous code since the last clear

  decode: while (op < end) {
    while (bits < codeLen) {
      // Running out of input without an EOI is treated like an EOI, as
      // libtiff does; the length check below reports it if data is missing.
      if (ip >= n) break decode;
      acc = (acc << 8) | src[ip++];
      bits += 8;
    }
    bits -= codeLen;
    const code = (acc >>> bits) & ((1 << codeLen) - 1);

    if (code === LZW_CLEAR) {
      codeLen = 9;
      next = LZW_FIRST;
      prevLen = 0;
      continue;
    }
    if (code === LZW_EOI) break;

    const pos = op;
    let len: number;
    if (code < 256) {
      out[op++] = code;
      len = 1;
    } else if (code < next) {
      len = lengths[code];
      const from = offsets[code];
      const count = len < end - op ? len : end - op;
      // The entry lies wholly before `op`, so a non-overlapping copy is right.
      if (count > 32) {
        out.copyWithin(op, from, from + count);
      } else {
        for (let i = 0; i < count; i++) out[op + i] = out[from + i];
      }
      op += count;
    } else if (code === next && prevLen > 0) {
      // The KwKwK case: the code being defined right now, i.e. the previous
      // string plus its own first byte. It starts at prevPos and overlaps
      // its own destination, so copy forwards byte by byte.
      len = prevLen + 1;
      const count = len < end - op ? len : end - op;
      for (let i = 0; i < count; i++) out[op + i] = out[prevPos + i];
      op += count;
    } else {
      throw new SourceError(`LZW stream corrupt: code ${code} at byte ${ip} is not in the table (next free code ${next})`);
    }

    if (prevLen > 0 && next < LZW_TABLE_SIZE) {
      offsets[next] = prevPos;
      lengths[next] = prevLen + 1;
      next++;
      if (next >= (1 << codeLen) - 1 && codeLen < LZW_MAX_BITS) codeLen++;
    }
    prevPos = pos;
    prevLen = len;
  }

  if (op < expected) {
    throw new SourceError(`LZW stream ended early: decoded ${op} of ${expected} bytes`);
  }
  return out;
}
