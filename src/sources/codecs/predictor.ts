/**
 * Byte order and the predictors: horizontal differencing (Predictor 2, TIFF 6.0 Section 14)
 * and the floating point predictor (Predictor 3, Adobe Photoshop TIFF Technical Note 3,
 * "TN3"). Each works on typed arrays in plain loops: no per-pixel closures, allocations or
 * DataViews. Scratch is module-level and reused, which is safe because decoding is synchronous.
 */
import type { OwnedBytes } from './output.js';

/** The host byte order; typed arrays always use it. */
export const NATIVE_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses each `size`-byte word in place (file order -> native order). */
export function swapBytes(data: Uint8Array, size: number): void {
  // Buffer's swap16/32/64 are native loops and work on a view without copying.
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (size === 2) view.swap16();
  else if (size === 4) view.swap32();
  else view.swap64();
}

/**
 * Predictor 2 (Section 14): each sample was stored as the difference from
 * the same sample of the previous pixel in the row, modulo 2^bits. Undone
 * with wrapping adds on unsigned views of the sample bits, which is also
 * right for signed and float samples (libtiff's horAcc works on the bits).
 * `rowLen` counts samples per row, `stride` is samples per pixel. Reads `src`
 * and writes `dst`, which may be the same bytes.
 */
export function undoHorizontalPredictor(src: OwnedBytes, dst: Uint8Array, bytesPerSample: number, rowLen: number, rows: number, stride: number): void {
  const n = src.length;
  switch (bytesPerSample) {
    case 1:
      horizontal8(src, dst, rowLen, rows, stride);
      break;
    case 2:
      horizontal16(new Uint16Array(src.buffer, src.byteOffset, n >>> 1), new Uint16Array(dst.buffer, dst.byteOffset, n >>> 1), rowLen, rows, stride);
      break;
    case 4:
      horizontal32(new Uint32Array(src.buffer, src.byteOffset, n >>> 2), new Uint32Array(dst.buffer, dst.byteOffset, n >>> 2), rowLen, rows, stride);
      break;
    default:
      horizontal64(new Uint32Array(src.buffer, src.byteOffset, n >>> 2), new Uint32Array(dst.buffer, dst.byteOffset, n >>> 2), rowLen, rows, stride);
      break;
  }
}

// One function per width keeps each loop monomorphic for V8. Stores into the
// unsigned typed arrays wrap modulo 2^bits, which is the arithmetic we need.
// Each row's first pixel is copied as it is; every later sample is its
// difference (from `src`) plus the sample before it (already in `dst`).

function horizontal8(src: Uint8Array, dst: Uint8Array, rowLen: number, rows: number, stride: number): void {
  for (let base = 0, r = 0; r < rows; r++, base += rowLen) {
    for (let i = base, first = base + Math.min(stride, rowLen); i < first; i++) dst[i] = src[i]!;
    for (let i = base + stride, end = base + rowLen; i < end; i++) dst[i] = src[i]! + dst[i - stride]!;
  }
}

function horizontal16(src: Uint16Array, dst: Uint16Array, rowLen: number, rows: number, stride: number): void {
  if (stride === 4 && rowLen >= 4) return horizontal16x4(src, dst, rowLen, rows);
  for (let base = 0, r = 0; r < rows; r++, base += rowLen) {
    for (let i = base, first = base + Math.min(stride, rowLen); i < first; i++) dst[i] = src[i]!;
    for (let i = base + stride, end = base + rowLen; i < end; i++) dst[i] = src[i]! + dst[i - stride]!;
  }
}

/** Four 16-bit samples a pixel (e.g. a 4-band scene): the running sums stay in registers. */
function horizontal16x4(src: Uint16Array, dst: Uint16Array, rowLen: number, rows: number): void {
  for (let base = 0, r = 0; r < rows; r++, base += rowLen) {
    let s0 = src[base]!,
      s1 = src[base + 1]!,
      s2 = src[base + 2]!,
      s3 = src[base + 3]!;
    dst[base] = s0;
    dst[base + 1] = s1;
    dst[base + 2] = s2;
    dst[base + 3] = s3;
    for (let i = base + 4, end = base + rowLen; i < end; i += 4) {
      dst[i] = s0 = (s0 + src[i]!) & 0xffff;
      dst[i + 1] = s1 = (s1 + src[i + 1]!) & 0xffff;
      dst[i + 2] = s2 = (s2 + src[i + 2]!) & 0xffff;
      dst[i + 3] = s3 = (s3 + src[i + 3]!) & 0xffff;
    }
  }
}

function horizontal32(src: Uint32Array, dst: Uint32Array, rowLen: number, rows: number, stride: number): void {
  for (let base = 0, r = 0; r < rows; r++, base += rowLen) {
    for (let i = base, first = base + Math.min(stride, rowLen); i < first; i++) dst[i] = src[i]!;
    for (let i = base + stride, end = base + rowLen; i < end; i++) dst[i] = src[i]! + dst[i - stride]!;
  }
}

/** 64-bit samples as native-order (lo, hi) Uint32 pairs, adding with carry. */
function horizontal64(src: Uint32Array, dst: Uint32Array, rowLen: number, rows: number, stride: number): void {
  const lo = NATIVE_LE ? 0 : 1;
  const hi = 1 - lo;
  const rowWords = rowLen * 2;
  const strideWords = stride * 2;
  for (let base = 0, r = 0; r < rows; r++, base += rowWords) {
    for (let i = base, first = base + Math.min(strideWords, rowWords); i < first; i++) dst[i] = src[i]!;
    for (let i = base + strideWords, end = base + rowWords; i < end; i += 2) {
      const j = i - strideWords;
      const sumLo = src[i + lo]! + dst[j + lo]!;
      dst[i + lo] = sumLo;
      dst[i + hi] = src[i + hi]! + dst[j + hi]! + (sumLo > 0xffffffff ? 1 : 0);
    }
  }
}

let fpScratch = new Uint8Array(0);

/**
 * Predictor 3 (TN3). Each row of `rowSamples` floats was split into byte
 * planes (all most significant bytes first, then the next ones, ...), and
 * the resulting byte string differenced with a stride of samples-per-pixel
 * across the whole row, plane boundaries included. Per row: copy it into a
 * reused scratch buffer, then one pass that both re-accumulates the bytes
 * and scatters each plane into its byte of the native-order floats in `out`
 * (which may be `raw` itself: each row is read before it is written).
 */
export function undoFloatingPointPredictor(raw: OwnedBytes, out: Uint8Array, rowSamples: number, rows: number, stride: number, bytesPerSample: number): void {
  const rowBytes = rowSamples * bytesPerSample;
  if (fpScratch.length < rowBytes) fpScratch = new Uint8Array(rowBytes);
  const tmp = fpScratch;
  const words = bytesPerSample === 4 && NATIVE_LE && out.byteOffset % 4 === 0 ? new Uint32Array(out.buffer, out.byteOffset, (rows * rowBytes) >> 2) : undefined;
  for (let r = 0, base = 0; r < rows; r++, base += rowBytes) {
    tmp.set(raw.subarray(base, base + rowBytes));
    // Undo the differencing over the whole byte string. With one sample a pixel the running
    // sum stays in a register instead of being reloaded from the byte just stored.
    if (stride === 1) {
      let acc = tmp[0]!;
      for (let k = 1; k < rowBytes; k++) tmp[k] = acc = (acc + tmp[k]!) & 0xff;
    } else {
      for (let k = stride; k < rowBytes; k++) tmp[k] += tmp[k - stride]!;
    }
    if (words) {
      // Float32: one word a sample, its bytes gathered from the four planes (MSB first).
      const n = rowSamples,
        n2 = 2 * n,
        n3 = 3 * n;
      const w0 = base >> 2;
      for (let i = 0; i < n; i++) words[w0 + i] = (tmp[i]! << 24) | (tmp[n + i]! << 16) | (tmp[n2 + i]! << 8) | tmp[n3 + i]!;
      continue;
    }
    for (let p = 0; p < bytesPerSample; p++) {
      // Plane p holds byte p counted from the most significant one.
      let d = base + (NATIVE_LE ? bytesPerSample - 1 - p : p);
      for (let k = p * rowSamples, end = k + rowSamples; k < end; k++, d += bytesPerSample) out[d] = tmp[k]!;
    }
  }
}
