/**
 * Decoding of one TIFF block (a tile or a strip): decompression, undoing the
 * predictor and byte order, and viewing the result as typed samples.
 *
 * Section numbers refer to the TIFF 6.0 specification (Adobe, 1992);
 * "TN3" is Adobe Photoshop TIFF Technical Note 3 (floating point predictor).
 *
 * This is the hot path of the tile server, so everything here works on typed
 * arrays in plain loops: no per-pixel closures, allocations or DataViews.
 * One output buffer is allocated per block; scratch tables are module-level
 * and reused, which is safe because decoding is synchronous.
 */
import { inflateSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import type { BlockLayout, Samples } from './types.js';

const COMPRESSION_NONE = 1;
const COMPRESSION_LZW = 5;
const COMPRESSION_ADOBE_DEFLATE = 8;
const COMPRESSION_DEFLATE = 32946;
const COMPRESSION_PACKBITS = 32773;
const COMPRESSION_ZSTD = 50000;

const PREDICTOR_NONE = 1;
const PREDICTOR_HORIZONTAL = 2;
const PREDICTOR_FLOATING_POINT = 3;

const SAMPLE_FORMAT_UINT = 1;
const SAMPLE_FORMAT_INT = 2;
const SAMPLE_FORMAT_IEEEFP = 3;
/** Section 19: "undefined data format"; readers treat it as unsigned. */
const SAMPLE_FORMAT_VOID = 4;

/** Refuse absurd blocks up front instead of failing deep inside an allocation. */
const MAX_BLOCK_BYTES = 0x7fffffff;

/**
 * How much a DEFLATE or ZSTD stream may decode to, as a guard against
 * decompression bombs. More than the block needs is tolerated because some
 * writers pad the last strip to a full RowsPerStrip (Section 3 allows a
 * short one but does not require it); the excess is ignored.
 */
function maxDecodedBytes(expected: number): number {
  return Math.min(Math.max(expected * 16, expected + 0x10000), MAX_BLOCK_BYTES);
}

/** The host byte order; typed arrays always use it. */
const NATIVE_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Decodes the raw, still-compressed bytes of one TIFF tile or strip.
 *
 * Returns `width * height * samples` samples, pixel-interleaved as stored, in
 * native byte order, typed from bitsPerSample + sampleFormat. The result
 * never shares memory with `bytes` and owns its whole ArrayBuffer
 * (byteOffset 0), so it can be transferred to another thread; with `shared`
 * it lives in a SharedArrayBuffer instead, written by the predictor's own pass
 * (no extra copy) when there is one.
 *
 * Data longer than the block needs is ignored (as libtiff does, e.g. padded
 * strips); shorter data, corrupt streams and unsupported layouts throw an
 * Error saying what failed.
 */
export function decodeBlock(bytes: Uint8Array, layout: BlockLayout, opts: { shared?: boolean } = {}): Samples {
  const { compression, predictor, width, height, samples, bitsPerSample, littleEndian } = layout;
  checkDimension('width', width);
  checkDimension('height', height);
  checkDimension('samples', samples);
  const sampleFormat = layout.sampleFormat === SAMPLE_FORMAT_VOID ? SAMPLE_FORMAT_UINT : layout.sampleFormat;
  checkSampleType(bitsPerSample, sampleFormat);
  const bytesPerSample = bitsPerSample >>> 3;
  const sampleCount = width * height * samples;
  const expected = sampleCount * bytesPerSample;
  if (expected > MAX_BLOCK_BYTES) {
    throw new Error(`TIFF block of ${width}x${height}x${samples} ${bitsPerSample}-bit samples is too large`);
  }

  if (predictor === PREDICTOR_FLOATING_POINT) {
    if (sampleFormat !== SAMPLE_FORMAT_IEEEFP) {
      throw new Error(`TIFF predictor 3 (floating point) needs float samples, got sample format ${sampleFormat}`);
    }
  } else if (predictor !== PREDICTOR_NONE && predictor !== PREDICTOR_HORIZONTAL) {
    throw new Error(`unsupported TIFF predictor ${predictor}`);
  }

  // Decoded into shared memory, the decompressed bytes are scratch: they need not own their buffer.
  const raw = decompressBlock(bytes, compression, expected, opts.shared === true);
  const out: Uint8Array = opts.shared ? new Uint8Array(new SharedArrayBuffer(expected)) : raw;

  if (predictor === PREDICTOR_FLOATING_POINT) {
    // TN3: the byte planes are always most significant first whatever the
    // file's byte order, and reassembly yields native order directly, so no
    // swap here (libtiff likewise disables its post-decode swab for fpAcc).
    undoFloatingPointPredictor(raw, out, width * samples, height, samples, bytesPerSample);
  } else {
    // Section 2 / 14: the predictor differences sample *values*, so the file
    // byte order must be undone before the accumulation.
    if (littleEndian !== NATIVE_LE && bytesPerSample > 1) swapBytes(raw, bytesPerSample);
    if (predictor === PREDICTOR_HORIZONTAL) {
      undoHorizontalPredictor(raw, out, bytesPerSample, width * samples, height, samples);
    } else if (out !== raw) {
      out.set(raw);
    }
  }
  return viewSamples(out.buffer, sampleCount, bitsPerSample, sampleFormat);
}

function checkDimension(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`invalid TIFF block ${name} ${value}`);
  }
}

function checkSampleType(bitsPerSample: number, sampleFormat: number): void {
  const ok =
    sampleFormat === SAMPLE_FORMAT_IEEEFP
      ? bitsPerSample === 32 || bitsPerSample === 64
      : (sampleFormat === SAMPLE_FORMAT_UINT || sampleFormat === SAMPLE_FORMAT_INT) &&
        (bitsPerSample === 8 || bitsPerSample === 16 || bitsPerSample === 32);
  if (!ok) {
    throw new Error(`unsupported TIFF sample type: ${bitsPerSample}-bit, sample format ${sampleFormat}`);
  }
}

function viewSamples(buffer: ArrayBufferLike, length: number, bitsPerSample: number, sampleFormat: number): Samples {
  if (sampleFormat === SAMPLE_FORMAT_IEEEFP) {
    return bitsPerSample === 32 ? new Float32Array(buffer, 0, length) : new Float64Array(buffer, 0, length);
  }
  const signed = sampleFormat === SAMPLE_FORMAT_INT;
  switch (bitsPerSample) {
    case 8:
      return signed ? new Int8Array(buffer, 0, length) : new Uint8Array(buffer, 0, length);
    case 16:
      return signed ? new Int16Array(buffer, 0, length) : new Uint16Array(buffer, 0, length);
    default:
      return signed ? new Int32Array(buffer, 0, length) : new Uint32Array(buffer, 0, length);
  }
}

// ---------------------------------------------------------------------------
// Decompression. Each returns exactly `expected` bytes in a Uint8Array that
// owns its ArrayBuffer from offset 0 (so any typed view of it is aligned), or
// with `scratch`, that starts at offset 0 of a buffer that may be longer.

type OwnedBytes = Uint8Array<ArrayBuffer>;

function decompressBlock(bytes: Uint8Array, compression: number, expected: number, scratch: boolean): OwnedBytes {
  switch (compression) {
    case COMPRESSION_NONE: {
      if (bytes.length < expected) throw shortBlock('uncompressed', bytes.length, expected);
      // Always copy: the predictor and byte swapping work in place and the
      // caller's buffer (often a slice of a larger range read) must not change.
      const out = new Uint8Array(expected);
      out.set(bytes.length === expected ? bytes : bytes.subarray(0, expected));
      return out;
    }
    case COMPRESSION_LZW:
      return decodeLzw(bytes, expected);
    case COMPRESSION_ADOBE_DEFLATE:
    case COMPRESSION_DEFLATE:
      return inflate(bytes, expected, scratch);
    case COMPRESSION_PACKBITS:
      return decodePackBits(bytes, expected);
    case COMPRESSION_ZSTD:
      return unzstd(bytes, expected);
    default:
      throw new Error(`unsupported TIFF compression ${compression}`);
  }
}

function shortBlock(codec: string, got: number, expected: number): Error {
  return new Error(`${codec} block decodes to ${got} bytes, expected ${expected} (truncated or corrupt data)`);
}

/** Returns `data` itself when it already owns its buffer exactly, else a copy of its first `expected` bytes. */
function owned(data: Uint8Array, expected: number): OwnedBytes {
  if (data.byteOffset === 0 && data.length === expected && data.buffer.byteLength === expected && data.buffer instanceof ArrayBuffer) {
    return data as OwnedBytes;
  }
  const out = new Uint8Array(expected);
  out.set(data.length === expected ? data : data.subarray(0, expected));
  return out;
}

/**
 * DEFLATE (zlib stream, compression 8 from the Adobe TIFF supplement and the
 * older 32946 code use the same format).
 */
function inflate(bytes: Uint8Array, expected: number, scratch: boolean): OwnedBytes {
  let out: Uint8Array;
  try {
    out = inflateSync(bytes, {
      // One output chunk of the expected size: for blocks of 4 KiB or more
      // Node then allocates one unpooled buffer we can keep as is. Filling it
      // exactly also makes Node allocate a second chunk, only to find the stream
      // ended; one byte more avoids that, where the buffer may be longer.
      chunkSize: Math.max(scratch ? expected + 1 : expected, 64),
      maxOutputLength: maxDecodedBytes(expected),
    });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new Error(`DEFLATE block decodes to more than ${maxDecodedBytes(expected)} bytes, expected ${expected}`);
    }
    throw new Error(`DEFLATE decode failed: ${errorMessage(err)}`);
  }
  if (out.length < expected) throw shortBlock('DEFLATE', out.length, expected);
  if (scratch && out.byteOffset === 0 && out.buffer instanceof ArrayBuffer) return new Uint8Array(out.buffer, 0, expected);
  return owned(out, expected);
}

/** libzstd refuses larger windows unless told otherwise (ZSTD_WINDOWLOG_LIMIT_DEFAULT). */
const ZSTD_MAX_WINDOW = 2 ** 27;

function unzstd(bytes: Uint8Array, expected: number): OwnedBytes {
  checkZstdHeader(bytes, expected);
  let out: Uint8Array;
  try {
    // fzstd is given no output buffer on purpose: with one it cannot report
    // how many bytes it produced, so a short frame would go unnoticed.
    out = zstdDecompress(bytes);
  } catch (err) {
    throw new Error(`ZSTD decode failed: ${errorMessage(err)}`);
  }
  if (out.length < expected) throw shortBlock('ZSTD', out.length, expected);
  return owned(out, expected);
}

/**
 * fzstd allocates the first frame's Frame_Content_Size, or without one (as
 * libtiff writes them) its window size, before decoding anything (RFC 8878
 * section 3.1.1.1). Checking the header first keeps a hostile frame from
 * making it allocate up to 2 GiB.
 */
function checkZstdHeader(src: Uint8Array, expected: number): void {
  if (src.length < 6 || src[0] !== 0x28 || src[1] !== 0xb5 || src[2] !== 0x2f || src[3] !== 0xfd) return;
  const descriptor = src[4];
  const singleSegment = (descriptor >> 5) & 1;
  const dictIdFlag = descriptor & 3;
  const fcsFlag = descriptor >> 6;
  let pos = 5;
  if (!singleSegment) {
    const wd = src[pos++];
    const base = 2 ** (10 + (wd >> 3));
    const window = base + (base / 8) * (wd & 7);
    if (window > ZSTD_MAX_WINDOW) throw new Error(`ZSTD frame window of ${window} bytes is larger than ${ZSTD_MAX_WINDOW}`);
  }
  pos += dictIdFlag === 3 ? 4 : dictIdFlag;
  const fcsBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
  let contentSize = fcsBytes === 2 ? 256 : 0;
  for (let i = 0, scale = 1; i < fcsBytes; i++, scale *= 256) contentSize += (src[pos + i] ?? 0) * scale;
  if (fcsBytes > 0 && contentSize > maxDecodedBytes(expected)) {
    throw new Error(`ZSTD frame declares ${contentSize} bytes, far more than the ${expected} the block needs`);
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * PackBits (Section 9): a signed header byte n, then n+1 literal bytes for
 * 0..127, one byte repeated 1-n times for -127..-1, nothing for -128.
 */
function decodePackBits(src: Uint8Array, expected: number): OwnedBytes {
  const out = new Uint8Array(expected);
  const end = src.length;
  let ip = 0;
  let op = 0;
  while (op < expected) {
    if (ip >= end) {
      throw new Error(`PackBits stream ended early: decoded ${op} of ${expected} bytes`);
    }
    const n = src[ip++];
    if (n < 128) {
      let count = n + 1;
      if (ip + count > end) {
        throw new Error(`PackBits stream ended early: literal run of ${count} bytes at offset ${ip - 1} overruns the ${end}-byte block`);
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
        throw new Error(`PackBits stream ended early: repeat run at offset ${ip - 1} has no data byte`);
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

// ---------------------------------------------------------------------------
// LZW (Section 13). Codes are written MSB-first, start 9 bits wide, and widen
// one code *early* (TIFF 6.0 encoders switch to N+1 bits when the next free
// code reaches 2^N - 1, not 2^N). Code 256 clears the table, 257 ends the
// strip, new entries start at 258, and widths stop at 12 bits.
//
// Every table entry is "previous string + first byte of the current one",
// and the previous string is always followed in the output by the current
// one, so each entry is a substring of the output already decoded: the
// table stores only (offset, length) into the output and decoding a code is
// a copy within the output. No per-code strings or allocations.

const LZW_CLEAR = 256;
const LZW_EOI = 257;
const LZW_FIRST = 258;
const LZW_MAX_BITS = 12;
const LZW_TABLE_SIZE = 1 << LZW_MAX_BITS;
const lzwOffset = new Int32Array(LZW_TABLE_SIZE);
const lzwLength = new Int32Array(LZW_TABLE_SIZE);

function decodeLzw(src: Uint8Array, expected: number): OwnedBytes {
  const n = src.length;
  if (n >= 2 && src[0] === 0 && (src[1] & 1) !== 0) {
    // The pre-6.0 "compat" flavour is LSB-first and starts 0x00 0x01
    // (libtiff's detection); a 6.0 stream starts with the 9-bit clear code.
    throw new Error('unsupported old-style (LSB-first, pre TIFF 6.0) LZW stream');
  }
  const out = new Uint8Array(expected);
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

  decode: while (op < expected) {
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
      const count = len < expected - op ? len : expected - op;
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
      const count = len < expected - op ? len : expected - op;
      for (let i = 0; i < count; i++) out[op + i] = out[prevPos + i];
      op += count;
    } else {
      throw new Error(`LZW stream corrupt: code ${code} at byte ${ip} is not in the table (next free code ${next})`);
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
    throw new Error(`LZW stream ended early: decoded ${op} of ${expected} bytes`);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Byte order and predictors.

/** Reverses each `size`-byte word in place (file order -> native order). */
function swapBytes(data: Uint8Array, size: number): void {
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
function undoHorizontalPredictor(src: OwnedBytes, dst: Uint8Array, bytesPerSample: number, rowLen: number, rows: number, stride: number): void {
  const n = src.length;
  switch (bytesPerSample) {
    case 1:
      horizontal8(src, dst, rowLen, rows, stride);
      break;
    case 2:
      horizontal16(new Uint16Array(src.buffer, 0, n >>> 1), new Uint16Array(dst.buffer, 0, n >>> 1), rowLen, rows, stride);
      break;
    case 4:
      horizontal32(new Uint32Array(src.buffer, 0, n >>> 2), new Uint32Array(dst.buffer, 0, n >>> 2), rowLen, rows, stride);
      break;
    default:
      horizontal64(new Uint32Array(src.buffer, 0, n >>> 2), new Uint32Array(dst.buffer, 0, n >>> 2), rowLen, rows, stride);
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
    let s0 = src[base]!, s1 = src[base + 1]!, s2 = src[base + 2]!, s3 = src[base + 3]!;
    dst[base] = s0; dst[base + 1] = s1; dst[base + 2] = s2; dst[base + 3] = s3;
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
function undoFloatingPointPredictor(raw: OwnedBytes, out: Uint8Array, rowSamples: number, rows: number, stride: number, bytesPerSample: number): void {
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
      const n = rowSamples, n2 = 2 * n, n3 = 3 * n;
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
