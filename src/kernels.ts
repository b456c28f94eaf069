/**
 * The WebAssembly kernels (assembly/kernels.ts, compiled to kernels.wasm beside this file by
 * `npm run build`): one instance a thread, compiled synchronously the first time a kernel is
 * asked for. Each function here answers false, having done nothing, when the kernels are off
 * (KERNELS=js), or the layout is one the kernel has no vector loop for, or the block is larger
 * than MAX_KERNEL_BYTES; the caller then runs its JavaScript twin, which stays the reference.
 *
 * A block is copied into the linear memory, worked on in place and copied out: both copies
 * are native memcpy, a small part of what the vector loops save.
 */
import { readFileSync } from 'node:fs';

/** `wasm`: the SIMD kernels where one fits; `js`: the JavaScript loops everywhere. */
export type Kernels = 'wasm' | 'js';

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
}

let mode: Kernels = 'wasm';
let instance: Exports | undefined;
let base = 0;

/** Chooses the kernels of this thread (KERNELS); render threads set it from their thread data. */
export function useKernels(kind: Kernels): void {
  mode = kind;
}

export function kernelsInUse(): Kernels {
  return mode;
}

function kernels(): Exports {
  if (instance) return instance;
  const url = new URL('./kernels.wasm', import.meta.url);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(readFileSync(url));
  } catch (err) {
    throw new Error(`the WebAssembly kernels are missing (${url.pathname}: ${(err as Error).message}); build them with \`npm run build\`, or set KERNELS=js`, {
      cause: err,
    });
  }
  instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as Exports;
  base = (instance.heapBase() + 15) & ~15;
  return instance;
}

/** The linear memory with `bytes` of room past the heap base, as bytes. */
function room(k: Exports, bytes: number): Uint8Array {
  const need = base + bytes;
  const have = k.memory.buffer.byteLength;
  if (need > have) k.memory.grow(Math.ceil((need - have) / 65536));
  return new Uint8Array(k.memory.buffer);
}

/**
 * Predictor 3 (TN3), Float32, one sample a pixel: the differenced byte planes of `raw`
 * (`rows` rows of `rowSamples` floats) become native-order floats in `out` (which may be `raw`).
 */
export function floatingPoint32(raw: Uint8Array, out: Uint8Array, rowSamples: number, rows: number): boolean {
  const n = rowSamples * rows * 4;
  if (mode !== 'wasm' || n > MAX_KERNEL_BYTES) return false;
  const k = kernels();
  const mem = room(k, n + rowSamples * 4 + 16);
  mem.set(raw.subarray(0, n), base);
  const tmp = (base + n + 15) & ~15;
  k.floatingPoint32(base, rowSamples, rows, tmp);
  out.set(mem.subarray(base, base + n));
  return true;
}

/**
 * Predictor 2 (Section 14) on native-order samples of `bytesPerSample` bytes: `rows` rows of
 * `rowLen` samples, `stride` a pixel, from `src` into `dst` (which may be `src`).
 */
export function horizontal(src: Uint8Array, dst: Uint8Array, bytesPerSample: number, rowLen: number, rows: number, stride: number): boolean {
  const n = rowLen * rows * bytesPerSample;
  const step = bytesPerSample * stride;
  if (mode !== 'wasm' || n > MAX_KERNEL_BYTES || bytesPerSample > 4 || step > 16 || (step & (step - 1)) !== 0) return false;
  const k = kernels();
  const mem = room(k, n);
  mem.set(src.subarray(0, n), base);
  if (!k.horizontal(base, bytesPerSample, rowLen, rows, stride)) return false;
  dst.set(mem.subarray(base, base + n));
  return true;
}
