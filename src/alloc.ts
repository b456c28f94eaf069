/**
 * Where a tile's typed arrays come from. A render thread recycles them between tiles (see
 * src/render/arena.ts); everything else takes fresh ones from the heap.
 */
export interface Alloc {
  float32(n: number): Float32Array;
  float64(n: number): Float64Array;
  bytes(n: number): Uint8Array;
}

/** Fresh zero-filled arrays from the heap, when nothing recycles them. */
export const heapAlloc: Alloc = { float32: (n) => new Float32Array(n), float64: (n) => new Float64Array(n), bytes: (n) => new Uint8Array(n) };
