/**
 * A zlib stream (RFC 1950) of PNG scanlines for the tiles of a ramp (src/render/png.ts,
 * `indexedPngOfCodes`): each row less the one above leaves small values and runs of one
 * value, which this codes with the two things that pay there: a run of three or more bytes as
 * a match at distance 1, every other byte as a literal, and Huffman codes fitted to each block
 * of RUNS_BLOCK bytes (src/kernels.ts; RFC 1951 §3.2.7). No search for longer matches: on the
 * bench's DEM tiles the files are 10% smaller than libdeflate's level 1, in less time (`npm
 * run bench`, step `encode`).
 *
 * This is the JavaScript twin of the WebAssembly kernel (assembly/kernels.ts `deflateRuns`)
 * and the reference it is tested against byte for byte: every choice below (the tokens, the
 * order of equal frequencies, how long codes are cut to 15 bits) is made the same way there.
 */

import { RUNS_BLOCK } from '../kernels.js';

/** Base lengths of the length symbols 257-285, and their extra bits (RFC 1951 §3.2.5). */
const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
/** The order in which the code-length code's lengths are written. */
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** The length code (0-28: symbol 257 + it) of each match length 3-258. */
const LENGTH_CODE = new Uint8Array(259);
for (let c = 0; c < 29; c++) for (let r = LENGTH_BASE[c]!; r <= (c < 28 ? LENGTH_BASE[c + 1]! - 1 : 258); r++) LENGTH_CODE[r] = c;

/** Writes bits from the low end, as deflate packs them. */
class BitWriter {
  private bits = 0;
  private count = 0;
  at = 0;

  constructor(readonly out: Uint8Array) {}

  /** `n` bits of `value`, n at most 24. */
  put(value: number, n: number): void {
    this.bits |= value << this.count;
    this.count += n;
    while (this.count >= 8) {
      this.out[this.at++] = this.bits & 0xff;
      this.bits >>>= 8;
      this.count -= 8;
    }
  }

  /** Pads the last byte with zeros. */
  flush(): void {
    if (this.count > 0) this.put(0, 8 - this.count);
  }
}

/**
 * Code lengths of at most `limit` bits for the symbols with these frequencies: minimum
 * redundancy (Moffat and Katajainen's in-place method over the symbols sorted by frequency,
 * then symbol), the lengths past `limit` cut to it and Kraft's inequality restored by
 * lengthening the longest codes shorter than `limit`, and the shortest codes given to the most
 * frequent symbols. With fewer than two symbols used, symbol 0 or 1 joins with frequency 1.
 */
export function codeLengths(freq: Uint32Array, limit: number): Uint8Array {
  const syms: number[] = [];
  for (let s = 0; s < freq.length; s++) if (freq[s]) syms.push(s);
  while (syms.length < 2) {
    const s = syms.length === 1 && syms[0] === 0 ? 1 : 0;
    freq[s] ||= 1;
    syms.push(s);
    syms.sort((a, b) => a - b);
  }
  syms.sort((a, b) => freq[a]! - freq[b]! || a - b);
  const m = syms.length;
  const a = Array.from(syms, (s) => freq[s]!);
  // Pass 1: the internal nodes' weights, then parent pointers.
  a[0]! += a[1]!;
  let root = 0,
    leaf = 2;
  for (let next = 1; next < m - 1; next++) {
    let w: number;
    if (leaf >= m || a[root]! < a[leaf]!) {
      w = a[root]!;
      a[root++] = next;
    } else w = a[leaf++]!;
    if (leaf >= m || (root < next && a[root]! < a[leaf]!)) {
      w += a[root]!;
      a[root++] = next;
    } else w += a[leaf++]!;
    a[next] = w;
  }
  // Pass 2: each internal node's depth.
  a[m - 2] = 0;
  for (let next = m - 3; next >= 0; next--) a[next] = a[a[next]!]! + 1;
  // Pass 3: how many leaves at each depth, those past `limit` counted at it.
  const counts = new Array<number>(limit + 1).fill(0);
  let avail = 1,
    used = 0,
    depth = 0;
  root = m - 2;
  while (avail > 0) {
    while (root >= 0 && a[root] === depth) {
      used++;
      root--;
    }
    counts[Math.min(depth, limit)]! += avail - used;
    avail = 2 * used;
    depth++;
    used = 0;
  }
  // Kraft's sum in units of 2^-limit is over 2^limit when lengths were cut: each step takes a
  // code off the longest length and splits the longest code shorter than it, one unit less.
  let total = 0;
  for (let l = 1; l <= limit; l++) total += counts[l]! * 2 ** (limit - l);
  for (; total > 2 ** limit; total--) {
    counts[limit]!--;
    for (let l = limit - 1; l > 0; l--)
      if (counts[l]) {
        counts[l]!--;
        counts[l + 1]! += 2;
        break;
      }
  }
  const lens = new Uint8Array(freq.length);
  let k = m - 1;
  for (let l = 1; l <= limit; l++) for (let c = counts[l]!; c > 0; c--) lens[syms[k--]!] = l;
  return lens;
}

/** Canonical codes (RFC 1951 §3.2.2) of these lengths, bit-reversed for writing from the low bit. */
export function canonicalCodes(lens: Uint8Array): Uint32Array {
  const next = new Array<number>(16).fill(0);
  for (const l of lens) next[l]!++;
  let code = 0,
    previous = 0;
  for (let l = 1; l < 16; l++) {
    code = (code + (l === 1 ? 0 : previous)) << 1;
    previous = next[l]!;
    next[l] = code;
  }
  const codes = new Uint32Array(lens.length);
  lens.forEach((l, s) => {
    if (!l) return;
    let c = next[l]!++,
      r = 0;
    for (let i = 0; i < l; i++, c >>>= 1) r = (r << 1) | (c & 1);
    codes[s] = r;
  });
  return codes;
}

/** Adler-32 (RFC 1950) of `src`. */
function adler32(src: Uint8Array): number {
  let a = 1,
    b = 0;
  for (let i = 0; i < src.length;) {
    const end = Math.min(src.length, i + 5552);
    for (; i < end; i++) {
      a += src[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return (b * 65536 + a) >>> 0;
}

/** The code-length sequence of a block's codes as symbols 0-18, each with its extra bits' value and count. */
function lengthRuns(seq: readonly number[]): [symbol: number, extra: number, extraBits: number][] {
  const out: [number, number, number][] = [];
  for (let j = 0; j < seq.length;) {
    const v = seq[j]!;
    let r = 1;
    while (j + r < seq.length && seq[j + r] === v) r++;
    if (v === 0 && r >= 3) {
      const k = Math.min(r, 138);
      out.push(k >= 11 ? [18, k - 11, 7] : [17, k - 3, 3]);
      j += k;
      continue;
    }
    out.push([v, 0, 0]);
    j++;
    for (let rest = r - 1; rest >= 3;) {
      const k = Math.min(rest, 6);
      out.push([16, k - 3, 2]);
      rest -= k;
      j += k;
    }
  }
  return out;
}

/** The zlib stream of `src`: see the module's comment. */
export function deflateRunsReference(src: Uint8Array): Uint8Array {
  const n = src.length;
  const w = new BitWriter(new Uint8Array(2 * n + 1024));
  // CMF: deflate with a 32 KiB window; FLG: the fastest level, and the check bits.
  w.put(0x78, 8);
  w.put(0x01, 8);
  // A token is a literal byte, or 256 + a run's length less 3.
  const tokens = new Uint16Array(Math.min(n, RUNS_BLOCK));
  for (let start = 0; start < n || start === 0; start += RUNS_BLOCK) {
    const end = Math.min(n, start + RUNS_BLOCK);
    const freq = new Uint32Array(286);
    let t = 0;
    for (let i = start; i < end;) {
      const b = src[i]!;
      if (i > 0 && src[i - 1] === b) {
        let r = 1;
        const most = Math.min(258, end - i);
        while (r < most && src[i + r] === b) r++;
        if (r >= 3) {
          tokens[t++] = 253 + r;
          freq[257 + LENGTH_CODE[r]!]!++;
          i += r;
          continue;
        }
      }
      tokens[t++] = b;
      freq[b]!++;
      i++;
    }
    freq[256] = 1;
    const lens = codeLengths(freq, 15);
    const codes = canonicalCodes(lens);
    let hlit = 286;
    while (hlit > 257 && !lens[hlit - 1]) hlit--;
    // The distance code: two codes of one bit, distance 1 (code 0) the only one used.
    const runs = lengthRuns([...lens.subarray(0, hlit), 1, 1]);
    const clFreq = new Uint32Array(19);
    for (const [s] of runs) clFreq[s]!++;
    const clLens = codeLengths(clFreq, 7);
    const clCodes = canonicalCodes(clLens);
    let hclen = 19;
    while (hclen > 4 && !clLens[CODE_LENGTH_ORDER[hclen - 1]!]) hclen--;
    w.put(end === n ? 1 : 0, 1);
    w.put(2, 2);
    w.put(hlit - 257, 5);
    w.put(1, 5);
    w.put(hclen - 4, 4);
    for (let j = 0; j < hclen; j++) w.put(clLens[CODE_LENGTH_ORDER[j]!]!, 3);
    for (const [s, extra, bits] of runs) {
      w.put(clCodes[s]!, clLens[s]!);
      if (bits) w.put(extra, bits);
    }
    for (let k = 0; k < t; k++) {
      const v = tokens[k]!;
      if (v < 256) {
        w.put(codes[v]!, lens[v]!);
        continue;
      }
      const r = v - 253;
      const c = LENGTH_CODE[r]!;
      w.put(codes[257 + c]!, lens[257 + c]!);
      if (LENGTH_EXTRA[c]) w.put(r - LENGTH_BASE[c]!, LENGTH_EXTRA[c]!);
      w.put(0, 1);
    }
    w.put(codes[256]!, lens[256]!);
    if (n === 0) break;
  }
  w.flush();
  const adler = adler32(src);
  for (const shift of [24, 16, 8, 0]) w.put((adler >>> shift) & 0xff, 8);
  return w.out.slice(0, w.at);
}
