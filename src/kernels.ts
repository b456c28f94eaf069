/**
 * The hot loops that run outside JavaScript, each beside a JavaScript (or Node) twin that stays
 * the reference:
 * - the WebAssembly SIMD kernels (assembly/kernels.ts, compiled to kernels.wasm beside this
 *   file by `npm run build`): one instance a thread, compiled synchronously the first time a
 *   kernel is asked for. A block is copied into the linear memory, worked on in place and
 *   copied out: both copies are native memcpy, a small part of what the vector loops save.
 *   Among them is a deflate encoder of its own for the PNG scanlines of ramps (deflateRuns);
 * - libdeflate's whole-buffer inflate and deflate (native/inflate.c, an N-API addon linked
 *   with Debian's libdeflate, built by `npm run build`): about 1.5x Node's zlib inflating
 *   whole COG blocks, and about 1.6x deflating the bench's indexed PNG tiles at the same
 *   level, their files 3% smaller. The addon also copies rows to and from the blocks the
 *   render threads share (SharedArrayBuffers), which V8 copies with relaxed atomic stores,
 *   and checksums the cells of decoded blocks (src/sources/cells.ts) with libdeflate's CRC-32
 *   and Adler-32.
 *
 * Each function here answers false (or undefined, or -1), having done nothing, when the
 * kernels are off (KERNELS=reference), or the layout is one the kernel has no vector loop
 * for, or the block is larger than MAX_KERNEL_BYTES; the caller then runs its reference.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** `fast`: the kernels where one fits; `reference`: the JavaScript loops and Node's zlib everywhere. */
export type Kernels = 'fast' | 'reference';

/**
 * The largest block the kernels take. The linear memory grows to the largest block a thread
 * has worked on and never shrinks, so a file's oversized blocks go the JavaScript way instead.
 */
export const MAX_KERNEL_BYTES = 16 * 2 ** 20;

interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  floatingPoint32(data: number, rowSamples: number, rows: number, tmp: number): void;
  horizontal(data: number, bytes: number, rowLen: number, rows: number, stride: number): number;
  separable(...args: number[]): void;
  triangle4(...args: number[]): number;
  validity(b0: number, b1: number, n: number, nodata: number, valid: number): number;
  twoBands16(src: number, spp: number, o0: number, o1: number, n: number, signed: number, d0: number, d1: number): void;
  ramp(band: number, mask: number, n: number, lo: number, k: number, last: number, lut: number, out: number, index: number): void;
  usedEntries(codes: number, n: number, used: number): number;
  indexRows(codes: number, size: number, entry: number, filter: number, rows: number): void;
  rgbUpRows(rgba: number, size: number, rows: number): number;
  deflateRuns(src: number, n: number, tokens: number, work: number, out: number): number;
  coordExtent(fu: number, fv: number, n: number, kx: number, ky: number, out: number): void;
  coordsToWindow(fu: number, fv: number, n: number, kx: number, ky: number, x0: number, y0: number, u: number, v: number): void;
  normalizedDifference(a: number, b: number, mask: number, n: number, out: number): void;
}

let wasm = true;
let libdeflate = true;
let instance: Exports | undefined;
let base = 0;
/** Counts the uses of the scratch memory: what one kernel left there is still there while it holds. */
let uses = 0;

/**
 * Chooses this thread's kernels (KERNELS): both kinds, or only the WebAssembly kernels or only
 * the inflate (the bench measures each alone). Render threads set it from their thread data.
 */
export function useKernels(kind: Kernels, only?: 'wasm' | 'inflate'): void {
  if (only !== 'inflate') wasm = kind === 'fast';
  if (only !== 'wasm') libdeflate = kind === 'fast';
}

export function kernelsInUse(): { wasm: boolean; inflate: 'libdeflate' | 'zlib' } {
  return { wasm, inflate: libdeflate ? 'libdeflate' : 'zlib' };
}

function kernels(): Exports {
  if (instance) return instance;
  const file = fileURLToPath(new URL('./kernels.wasm', import.meta.url));
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (err) {
    throw new Error(`the WebAssembly kernels are missing (${file}: ${(err as Error).message}); build them with \`npm run build\`, or set KERNELS=reference`, {
      cause: err,
    });
  }
  instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as Exports;
  base = (instance.heapBase() + 15) & ~15;
  return instance;
}

/** What `copyRows` takes: each view, its byte offset and its stride (bytes a row), then the row's bytes and the rows. */
type RowCopy = [dst: ArrayBufferView, dstAt: number, dstStride: number, src: ArrayBufferView, srcAt: number, srcStride: number, rowBytes: number, rows: number];

let addon:
  | {
      inflate(src: Uint8Array, dst: Uint8Array): number;
      deflate(src: Uint8Array, level: number): Uint8Array<ArrayBuffer>;
      mallocThresholds(mapBytes: number, trimBytes: number): boolean;
      trim(): boolean;
      externalMemory(bytes: number): number;
      copyRows(...args: RowCopy): void;
      rowChecksums(src: ArrayBufferView, srcAt: number, srcStride: number, rowBytes: number, rows: number): string;
    }
  | undefined;

/** The libdeflate addon, in native/build/Release two levels up from dist/src. */
function inflater(): NonNullable<typeof addon> {
  if (addon) return addon;
  const file = fileURLToPath(new URL('../../native/build/Release/inflate.node', import.meta.url));
  try {
    addon = createRequire(import.meta.url)(file) as NonNullable<typeof addon>;
  } catch (err) {
    throw new Error(`the libdeflate addon is missing (${file}: ${(err as Error).message}); build it with \`npm run build\`, or set KERNELS=reference`, {
      cause: err,
    });
  }
  return addon;
}

/** glibc's largest mapping threshold (half its 64 MiB thread heaps): allocations up to it come from the heaps. */
const MMAP_THRESHOLD = 32 * 2 ** 20;
/** Free memory at the top of a heap that glibc keeps when a block is freed; past it the top goes back to the system. */
const TRIM_THRESHOLD = 32 * 2 ** 20;
/** How often the free memory inside the heaps goes back to the system (malloc_trim). */
export const TRIM_EVERY_MS = 5000;
let recycling: boolean | undefined;

/**
 * Large allocations (decoded blocks, windows, rasters, tiles) from glibc's heaps, where a
 * freed one is reused by the next: a block decoded into memory a block freed a moment ago
 * costs no page faults, where fresh memory costs the kernel a fault and a zeroed page every
 * 4 KiB. Every TRIM_EVERY_MS the memory still free in the heaps goes back to the system
 * (malloc_trim), so that the resident memory of a process that renders for days follows what
 * it holds, not the most it once held, within that time. The render pool asks for it once per
 * process; glibc's own setting (MALLOC_MMAP_THRESHOLD_) in the environment is left to rule.
 * Answers whether it is in place: false under that setting, without the addon or without glibc.
 */
export function recycleLargeAllocations(): boolean {
  if (recycling === undefined) {
    try {
      recycling = process.env.MALLOC_MMAP_THRESHOLD_ === undefined && inflater().mallocThresholds(MMAP_THRESHOLD, TRIM_THRESHOLD);
    } catch {
      // Without the addon (KERNELS=reference on a machine that could not build it) glibc keeps its defaults.
      recycling = false;
    }
    if (recycling) {
      const trim = inflater().trim;
      setInterval(() => trim(), TRIM_EVERY_MS).unref();
    }
  }
  return recycling;
}

/**
 * Tells V8 that this thread holds `bytes` more (negative: fewer) bytes outside its heap, which
 * it counts towards its next collection (the addon's napi_adjust_external_memory). Answers
 * false, having done nothing, without the addon.
 */
export function countExternalMemory(bytes: number): boolean {
  try {
    inflater().externalMemory(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * Inflates the zlib stream `src` into all of `dst` with libdeflate: answers the bytes written
 * (fewer than `dst` holds when the stream is shorter), or -1 when it cannot (KERNELS=reference,
 * a corrupt stream, or more data than `dst` holds), for the caller to ask Node's zlib.
 */
export function inflateInto(src: Uint8Array, dst: Uint8Array): number {
  if (!libdeflate) return -1;
  return inflater().inflate(src, dst);
}

/**
 * `src` as a zlib stream by libdeflate at `level` (1-12; at the same level it is faster than
 * zlib and its output smaller), or undefined with KERNELS=reference, for Node's zlib.
 */
export function deflateZlib(src: Uint8Array, level: number): Uint8Array<ArrayBuffer> | undefined {
  if (!libdeflate) return undefined;
  return inflater().deflate(src, level);
}

/**
 * `rows` rows of `rowBytes` bytes from `src` to `dst`, natively (the addon's memmove): byte
 * offsets and strides from the start of each view. V8 copies to or from a SharedArrayBuffer
 * (a decoded block the render threads share) with relaxed atomic stores, about half as fast.
 * Answers false, having done nothing, when the addon is off (KERNELS=reference).
 */
export function copyRows(...args: RowCopy): boolean {
  if (!libdeflate) return false;
  inflater().copyRows(...args);
  return true;
}

/**
 * The CRC-32 and Adler-32 (as zlib computes them) of `rows` rows of `rowBytes` bytes of `src`,
 * one after another (byte offset and stride from the start of the view), as 16 hex digits, by
 * libdeflate; undefined when the addon is off (KERNELS=reference).
 */
export function rowChecksums(src: ArrayBufferView, srcAt: number, srcStride: number, rowBytes: number, rows: number): string | undefined {
  if (!libdeflate) return undefined;
  return inflater().rowChecksums(src, srcAt, srcStride, rowBytes, rows);
}

/** `n` bytes from `src` (from byte `srcAt`) to the start of `dst`: copyRows with one row, else TypedArray.set. */
export function copyOut(dst: Uint8Array, src: Uint8Array, srcAt: number, n: number): void {
  if (!copyRows(dst, 0, n, src, srcAt, n, n, 1)) dst.set(src.subarray(srcAt, srcAt + n));
}

/**
 * The instance, and regions of the given sizes in its linear memory: placed one after another
 * past the heap base, each 16-byte aligned for vector loads, the memory grown to hold them.
 */
function scratch(sizes: readonly number[]): { k: Exports; mem: Uint8Array; at: number[] } {
  const k = kernels();
  uses++;
  let next = base;
  const at = Array.from(sizes, (bytes) => {
    const p = (next + 15) & ~15;
    next = p + bytes;
    return p;
  });
  const have = k.memory.buffer.byteLength;
  if (next > have) k.memory.grow(Math.ceil((next - have) / 65536));
  return { k, mem: new Uint8Array(k.memory.buffer), at };
}

/**
 * Where a block may be inflated so that the predictor kernel that follows finds it in place
 * instead of copying it in (`horizontal`, `floatingPoint32`): `bytes` at the start of the
 * scratch memory, 16-byte aligned. Like any scratch, it holds until the next kernel runs.
 * Undefined when the kernels are off or the block is too large.
 */
export function inflateScratch(bytes: number): Uint8Array<ArrayBuffer> | undefined {
  if (!wasm || bytes > MAX_KERNEL_BYTES) return undefined;
  const {
    mem,
    at: [p],
  } = scratch([bytes]);
  return new Uint8Array(mem.buffer as ArrayBuffer, p!, bytes);
}

/** Whether `raw` is inflateScratch's: its bytes already lie where a kernel's first region starts. Asked before `scratch` grows the memory. */
function inScratch(raw: Uint8Array): boolean {
  return instance !== undefined && raw.buffer === instance.memory.buffer && raw.byteOffset === base;
}

/**
 * Predictor 3 (TN3), Float32, one sample a pixel: the differenced byte planes of `raw`
 * (`rows` rows of `rowSamples` floats) become native-order floats in `out` (which may be `raw`).
 */
export function floatingPoint32(raw: Uint8Array, out: Uint8Array, rowSamples: number, rows: number): boolean {
  const n = rowSamples * rows * 4;
  if (!wasm || n > MAX_KERNEL_BYTES) return false;
  const inPlace = inScratch(raw);
  const {
    k,
    mem,
    at: [data, tmp],
  } = scratch([n, rowSamples * 4]);
  // Growing the memory keeps its bytes: inflated in place, they are still at `data`.
  if (!inPlace) mem.set(raw.subarray(0, n), data);
  k.floatingPoint32(data, rowSamples, rows, tmp);
  copyOut(out, mem, data, n);
  return true;
}

/**
 * Predictor 2 (Section 14) on native-order samples of `bytesPerSample` bytes: `rows` rows of
 * `rowLen` samples, `stride` a pixel, from `src` into `dst` (which may be `src`).
 */
export function horizontal(src: Uint8Array, dst: Uint8Array, bytesPerSample: number, rowLen: number, rows: number, stride: number): boolean {
  const n = rowLen * rows * bytesPerSample;
  const step = bytesPerSample * stride;
  if (!wasm || n > MAX_KERNEL_BYTES || bytesPerSample > 4 || step > 16 || (step & (step - 1)) !== 0) return false;
  const inPlace = inScratch(src);
  const {
    k,
    mem,
    at: [data],
  } = scratch([n]);
  if (!inPlace) mem.set(src.subarray(0, n), data);
  if (!k.horizontal(data, bytesPerSample, rowLen, rows, stride)) return false;
  copyOut(dst, mem, data, n);
  return true;
}

/** The taps of one axis of separable resampling (src/sources/sample.ts). */
export interface AxisTaps {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  per: number;
  ok: Uint8Array;
}

/**
 * Separable resampling's two passes (src/sources/sample.ts, `separable`) for every band:
 * `bands` are the window's (`ww` pixels wide), of which rows `minRow` to `minRow + nRows - 1`
 * are read; the W x W outputs' drawn rows are written, nothing else of them.
 */
export function separable(
  bands: readonly Float32Array[],
  ww: number,
  minRow: number,
  nRows: number,
  W: number,
  cols: AxisTaps,
  rows: AxisTaps,
  out: readonly Float32Array[],
): boolean {
  if (!wasm) return false;
  const sizes = [W * 4, W * 4, W * cols.per * 4, W, W * 4, W * 4, W * rows.per * 4, W, nRows * ww * 4, nRows * W * 4, W * W * 4];
  if (sizes.reduce((a, b) => a + b + 15, 0) > MAX_KERNEL_BYTES) return false;
  const {
    k,
    mem,
    at: [cStart, cCount, cWeights, cOk, rStart, rCount, rWeights, rOk, band, h, dst],
  } = scratch(sizes);
  put(mem, cStart, cols.start, W);
  put(mem, cCount, cols.count, W);
  put(mem, cWeights, cols.weights, W * cols.per);
  put(mem, cOk, cols.ok, W);
  put(mem, rStart, rows.start, W);
  put(mem, rCount, rows.count, W);
  put(mem, rWeights, rows.weights, W * rows.per);
  put(mem, rOk, rows.ok, W);
  let allRows = true;
  for (let j = 0; j < W; j++) if (!rows.ok[j]) allRows = false;
  const floats = new Float32Array(mem.buffer);
  for (let b = 0; b < bands.length; b++) {
    floats.set(bands[b]!.subarray(minRow * ww, (minRow + nRows) * ww), band >> 2);
    k.separable(band, ww, minRow, nRows, W, cStart, cCount, cWeights, cols.per, cOk, rStart, rCount, rWeights, rows.per, rOk, h, dst);
    const o = dst >> 2;
    if (allRows) out[b]!.set(floats.subarray(o, o + W * W));
    else for (let j = 0; j < W; j++) if (rows.ok[j]) out[b]!.set(floats.subarray(o + j * W, o + (j + 1) * W), j * W);
  }
  return true;
}

/** The first `n` elements of `a`, as bytes, into the kernels' memory at `p`. */
function put(mem: Uint8Array, p: number, a: Int32Array | Float32Array | Uint8Array, n: number): void {
  mem.set(new Uint8Array(a.buffer, a.byteOffset, n * a.BYTES_PER_ELEMENT), p);
}

/**
 * The widened bilinear kernel up to 2x on an all-valid window (src/sources/sample.ts,
 * `triangleAllValid4`) for one or two bands: `u`, `v` the output pixels' window coordinates,
 * `bands` the window's (`ww` x `wh`). Writes the drawn pixels of `out` and `mask` and answers
 * the pixels it left to the general loop (their 4x4 taps would leave the window), or
 * undefined, having done nothing.
 */
export function triangle4(
  u: Float32Array,
  v: Float32Array,
  ww: number,
  wh: number,
  sx: number,
  sy: number,
  bands: readonly Float32Array[],
  out: readonly Float32Array[],
  mask: Uint8Array,
): Int32Array | undefined {
  const nb = bands.length;
  if (!wasm || nb < 1 || nb > 2) return undefined;
  const n = u.length;
  // u, v, the bands, the outputs, the mask and the edges.
  const sizes = [n * 4, n * 4, ...bands.map(() => ww * wh * 4), ...bands.map(() => n * 4), n, n * 4];
  if (sizes.reduce((a, b) => a + b + 15, 0) > MAX_KERNEL_BYTES) return undefined;
  const { k, mem, at } = scratch(sizes);
  const [pu, pv] = at;
  const pb = at.slice(2, 2 + nb),
    po = at.slice(2 + nb, 2 + 2 * nb);
  const [pm, pe] = at.slice(2 + 2 * nb);
  const floats = new Float32Array(mem.buffer);
  floats.set(u, pu >> 2);
  floats.set(v, pv >> 2);
  for (let b = 0; b < nb; b++) {
    floats.set(bands[b]!.subarray(0, ww * wh), pb[b]! >> 2);
    floats.set(out[b]!.subarray(0, n), po[b]! >> 2);
  }
  mem.set(mask.subarray(0, n), pm);
  const b1 = nb === 2 ? pb[1]! : pb[0]!,
    o1 = nb === 2 ? po[1]! : po[0]!;
  const edges = k.triangle4(pu, pv, n, ww, wh, sx, sy, 1 / sx, 1 / sy, pb[0]!, b1, po[0]!, o1, pm, pe);
  for (let b = 0; b < nb; b++) out[b]!.set(floats.subarray(po[b]! >> 2, (po[b]! >> 2) + n));
  mask.set(mem.subarray(pm, pm + n));
  return new Int32Array(mem.buffer, pe, edges).slice();
}

/**
 * A reprojected read's coordinates on a level (src/tiles/plan.ts `levelExtent`, then
 * `toWindow`): `fu` and `fv`, full-resolution source coordinates of the output pixels, scaled
 * by `kx` and `ky`. Answers their extent [minU, minV, maxU, maxV] over the pixels where both
 * are numbers (null when none is), and `toWindow`, which writes them less a window's corner,
 * rounded to Float32, into `u` and `v`: from the copy the extent made while no other kernel has
 * run since, else from `fu` and `fv` again. Undefined, having done nothing, when the kernels are
 * off or the arrays are too large; `toWindow` answers false, having done nothing, when `u` and
 * `v` are not the coordinates' length.
 */
export function levelCoords(
  fu: Float64Array,
  fv: Float64Array,
  kx: number,
  ky: number,
): { extent: [number, number, number, number] | null; toWindow(x0: number, y0: number, u: Float32Array, v: Float32Array): boolean } | undefined {
  const n = fu.length;
  if (!wasm || fv.length !== n || n * 32 + 64 > MAX_KERNEL_BYTES) return undefined;
  // The coordinates, the extent, then u and v: the same places each time for the same n.
  const sizes = [n * 8, n * 8, 32, n * 4, n * 4];
  const stage = () => {
    const { k, mem, at } = scratch(sizes);
    const doubles = new Float64Array(mem.buffer);
    doubles.set(fu, at[0]! >> 3);
    doubles.set(fv, at[1]! >> 3);
    return { k, at, staged: uses };
  };
  const first = stage();
  first.k.coordExtent(first.at[0]!, first.at[1]!, n, kx, ky, first.at[2]!);
  const [minU, minV, maxU, maxV] = new Float64Array(first.k.memory.buffer, first.at[2]!, 4);
  const extent: [number, number, number, number] | null = minU === Infinity ? null : [minU!, minV!, maxU!, maxV!];
  return {
    extent,
    toWindow(x0, y0, u, v) {
      if (u.length !== n || v.length !== n) return false;
      const { k, at } = uses === first.staged ? first : stage();
      k.coordsToWindow(at[0]!, at[1]!, n, kx, ky, x0, y0, at[3]!, at[4]!);
      const floats = new Float32Array(k.memory.buffer);
      u.set(floats.subarray(at[3]! >> 2, (at[3]! >> 2) + n));
      v.set(floats.subarray(at[4]! >> 2, (at[4]! >> 2) + n));
      return true;
    },
  };
}

/**
 * (a - b) / (a + b) where `mask` is not 0 (src/ops/builtin/bands.ts `NormalizedDifference`),
 * into `out`, 0 wherever it draws nothing; a pixel whose sum is 0 or NaN is masked. Answers
 * false, having done nothing, when the kernels are off or the bands are too large.
 */
export function normalizedDifference(a: Float32Array, b: Float32Array, mask: Uint8Array, out: Float32Array): boolean {
  const n = out.length;
  if (!wasm || a.length < n || b.length < n || mask.length < n || n * 13 > MAX_KERNEL_BYTES) return false;
  const {
    k,
    mem,
    at: [pa, pb, pm, po],
  } = scratch([n * 4, n * 4, n, n * 4]);
  const floats = new Float32Array(mem.buffer);
  floats.set(a.subarray(0, n), pa! >> 2);
  floats.set(b.subarray(0, n), pb! >> 2);
  mem.set(mask.subarray(0, n), pm);
  k.normalizedDifference(pa!, pb!, pm!, n, po!);
  out.set(floats.subarray(po! >> 2, (po! >> 2) + n));
  mask.set(mem.subarray(pm!, pm! + n));
  return true;
}

/**
 * The validity pass of a window of one or two bands without a mask (src/sources/window.ts):
 * `valid` gets 1 where no band is NaN or `nodata` (a Float32; NaN for none), 0 elsewhere, for
 * the first `n` pixels. Answers how many it left invalid, or undefined, having done nothing.
 */
export function validity(bands: readonly Float32Array[], n: number, nodata: number, valid: Uint8Array): number | undefined {
  const nb = bands.length;
  if (!wasm || nb < 1 || nb > 2 || n * (4 * nb + 1) > MAX_KERNEL_BYTES) return undefined;
  const { k, mem, at } = scratch([...bands.map(() => n * 4), n]);
  const p0 = at[0]!,
    p1 = nb === 2 ? at[1]! : p0,
    pv = at[nb]!;
  const floats = new Float32Array(mem.buffer);
  floats.set(bands[0]!.subarray(0, n), p0 >> 2);
  if (nb === 2) floats.set(bands[1]!.subarray(0, n), p1 >> 2);
  const invalid = k.validity(p0, p1, n, nodata, pv);
  valid.set(mem.subarray(pv, pv + n));
  return invalid;
}

/**
 * Two bands of a block of pixel-interleaved 16-bit samples into a window's Float32 bands
 * (src/sources/window.ts, the two-band walk of `readWindowInto`): of the block's `samples`
 * (`bw` pixels a row, `spp` samples a pixel), the columns `c0` to `c1 - 1` of rows `r0` to
 * `r1 - 1`, samples `o0` and `o1` of each pixel, land in `d0` and `d1` from `at` on, `stride`
 * floats a row. With `check`, the part's validity lands in `check.valid` at the same places, as
 * `validity` gives it, while the floats are still in the linear memory. Answers how many pixels
 * it left invalid (0 without `check`), or -1, having done nothing, when the kernels are off or
 * the part is too large.
 */
export function twoBands16(
  samples: Uint16Array | Int16Array,
  bw: number,
  spp: number,
  o0: number,
  o1: number,
  [c0, c1, r0, r1]: readonly [number, number, number, number],
  d0: Float32Array,
  d1: Float32Array,
  at: number,
  stride: number,
  check?: { nodata: number; valid: Uint8Array },
): number {
  const w = c1 - c0,
    h = r1 - r0,
    n = w * h;
  if (!wasm || n <= 0 || n * (2 * spp + 9) > MAX_KERNEL_BYTES) return -1;
  const {
    k,
    mem,
    at: [src, p0, p1, pv],
  } = scratch([n * spp * 2, n * 4, n * 4, n]);
  const halves = new Uint16Array(mem.buffer);
  const rowSamples = w * spp;
  // The part's rows one after another: a single copy when they are whole block rows.
  if (!copyRows(mem, src, rowSamples * 2, samples, (r0 * bw + c0) * spp * 2, bw * spp * 2, rowSamples * 2, h)) {
    if (w === bw) halves.set(samples.subarray(r0 * bw * spp, r1 * bw * spp), src >> 1);
    else for (let r = 0; r < h; r++) halves.set(samples.subarray(((r0 + r) * bw + c0) * spp, ((r0 + r) * bw + c1) * spp), (src >> 1) + r * rowSamples);
  }
  k.twoBands16(src, spp, o0, o1, n, samples instanceof Int16Array ? 1 : 0, p0, p1);
  const invalid = check ? k.validity(p0, p1, n, check.nodata, pv) : 0;
  // The part's rows to the window's: one native call for each plane, else a copy a row.
  if (copyRows(d0, at * 4, stride * 4, mem, p0, w * 4, w * 4, h)) {
    copyRows(d1, at * 4, stride * 4, mem, p1, w * 4, w * 4, h);
    if (check) copyRows(check.valid, at, stride, mem, pv, w, w, h);
    return invalid;
  }
  const floats = new Float32Array(mem.buffer);
  for (let r = 0; r < h; r++) {
    const from = r * w;
    d0.set(floats.subarray((p0 >> 2) + from, (p0 >> 2) + from + w), at + r * stride);
    d1.set(floats.subarray((p1 >> 2) + from, (p1 >> 2) + from + w), at + r * stride);
    if (check) check.valid.set(mem.subarray(pv + from, pv + from + w), at + r * stride);
  }
  return invalid;
}

/** Pixels the colour ramp takes at once: 2.75 MiB of the linear memory, whatever the raster's size. */
const RAMP_CHUNK = 1 << 18;

/**
 * A colour ramp over the first `n` pixels of a band (src/ops/builtin/colormap.ts, `apply`):
 * where `mask` is set and the value is not NaN, the entry `(v - lo) * k + 0.5`, truncated and
 * clamped to the table, gives `out` its colour and `index` the entry plus one; elsewhere both
 * get 0. A metatile's raster goes through in parts of RAMP_CHUNK pixels. Answers false, having
 * done nothing, when the kernels are off or the table is past the bound.
 */
export function ramp(band: Float32Array, mask: Uint8Array, n: number, lo: number, k: number, lut: Uint32Array, out: Uint32Array, index: Uint16Array): boolean {
  const m = Math.min(n, RAMP_CHUNK);
  if (!wasm || lut.length === 0 || m * 11 + lut.length * 4 > MAX_KERNEL_BYTES) return false;
  const {
    k: kx,
    mem,
    at: [pBand, pMask, pLut, pOut, pIndex],
  } = scratch([m * 4, m, lut.length * 4, m * 4, m * 2]);
  new Uint32Array(mem.buffer, pLut, lut.length).set(lut);
  const floats = new Float32Array(mem.buffer, pBand, m),
    colours = new Uint32Array(mem.buffer, pOut, m),
    codes = new Uint16Array(mem.buffer, pIndex, m);
  for (let at = 0; at < n; at += m) {
    const part = Math.min(m, n - at);
    floats.set(band.subarray(at, at + part));
    mem.set(mask.subarray(at, at + part), pMask);
    kx.ramp(pBand, pMask, part, lo, k, lut.length - 1, pLut, pOut, pIndex);
    out.set(part === m ? colours : colours.subarray(0, part), at);
    index.set(part === m ? codes : codes.subarray(0, part), at);
  }
  return true;
}

/**
 * An indexed PNG's scanlines from a colour map's codes (src/render/png.ts, `indexedPngOfCodes`),
 * `size` x `size` of them: `palette` is given which entries the tile uses (`used[c]` is 1 for
 * each, up to `highest`) and answers each entry's palette index, or null to give up (past 256
 * colours, or an entry past the table: it may throw). Answers the scanlines (a filter byte a
 * row, `filter` 0, none, or 2, Up), null when `palette` gave up, or undefined, having done
 * nothing.
 */
export function indexRows(
  codes: Uint16Array,
  size: number,
  filter: 0 | 2,
  palette: (used: Uint8Array, highest: number) => Uint8Array | null,
): Uint8Array | null | undefined {
  const n = size * size;
  if (!wasm || n * 4 + size + 2 * 65536 > MAX_KERNEL_BYTES) return undefined;
  const {
    k,
    mem,
    at: [pCodes, pUsed, pEntry, pRows],
  } = scratch([n * 2, 65536, 65536, n + size]);
  mem.set(new Uint8Array(codes.buffer, codes.byteOffset, n * 2), pCodes);
  mem.fill(0, pUsed, pUsed + 65536);
  const highest = k.usedEntries(pCodes, n, pUsed);
  const entry = palette(mem.subarray(pUsed, pUsed + highest + 1), highest);
  if (!entry) return null;
  mem.set(entry.subarray(0, highest + 1), pEntry);
  k.indexRows(pCodes, size, pEntry, filter, pRows);
  return mem.slice(pRows, pRows + n + size);
}

/**
 * An opaque tile's PNG scanlines as RGB, each row less the one above (src/render/png.ts,
 * `rgbaPng`): `size` x `size` RGBA pixels in, a filter byte (2, Up) and three bytes a pixel a
 * row out. Null when a pixel's alpha is not 255; undefined, having done nothing, when the
 * kernels are off.
 */
export function rgbUpRows(rgba: Uint8Array, size: number): Uint8Array | null | undefined {
  const n = size * size;
  const bytes = n * 3 + size;
  if (!wasm || n * 4 + bytes + 32 > MAX_KERNEL_BYTES) return undefined;
  const {
    k,
    mem,
    at: [pRgba, pRows],
  } = scratch([n * 4, bytes + 16]);
  mem.set(rgba.subarray(0, n * 4), pRgba);
  if (!k.rgbUpRows(pRgba, size, pRows)) return null;
  return mem.slice(pRows, pRows + bytes);
}

/**
 * The zlib stream of PNG scanlines by the WebAssembly twin of src/render/runs.ts
 * `deflateRunsReference` (the same bytes), or undefined, having done nothing, when the kernels
 * are off.
 */
export function deflateRuns(src: Uint8Array): Uint8Array<ArrayBuffer> | undefined {
  const n = src.length;
  // The output's bound, and 8 bytes that the writer stores past its last byte.
  const bound = 2 * n + 1024 + 8;
  if (!wasm || n + bound + RUNS_TOKEN_BYTES + RUNS_WORK_BYTES > MAX_KERNEL_BYTES) return undefined;
  const {
    k,
    mem,
    at: [pSrc, pTokens, pWork, pOut],
  } = scratch([n, RUNS_TOKEN_BYTES, RUNS_WORK_BYTES, bound]);
  mem.set(src, pSrc);
  const written = k.deflateRuns(pSrc!, n, pTokens!, pWork!, pOut!);
  return mem.slice(pOut, pOut! + written);
}

/**
 * Input bytes a block of deflateRuns and of its reference (src/render/runs.ts): each block's
 * codes follow the statistics of its part of the tile. The kernel's RUNS_BLOCK is the same.
 */
export const RUNS_BLOCK = 16384;
/** The kernel's room for a block's tokens (assembly/kernels.ts `deflateRuns`), and for its tables. */
const RUNS_TOKEN_BYTES = 2 * RUNS_BLOCK + 32;
const RUNS_WORK_BYTES = 12288;
