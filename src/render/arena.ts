import type { Alloc } from '../alloc.js';

/**
 * Spare ArrayBuffers of a render thread, by exact length, bounded in bytes.
 *
 * A tile allocates about a megabyte of rasters (bands, masks, RGBA) that are garbage once it
 * is encoded. V8 counts such off-heap memory towards the point where it runs a full
 * mark-compact collection, so with a heap of a few MB every dozen tiles cost one. Recycling
 * the buffers keeps that memory live and constant instead.
 */
export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private held = 0;

  constructor(private readonly maxBytes: number) {}

  take(byteLength: number): ArrayBuffer | undefined {
    const list = this.free.get(byteLength);
    const buf = list?.pop();
    if (buf) this.held -= byteLength;
    return buf;
  }

  give(buf: ArrayBuffer): void {
    // A buffer transferred to another thread is detached: its length reads 0.
    const n = buf.byteLength;
    if (n === 0 || this.held + n > this.maxBytes) return;
    let list = this.free.get(n);
    if (!list) this.free.set(n, (list = []));
    list.push(buf);
    this.held += n;
  }
}

/** The rasters of one tile: zero-filled arrays from the pool, all given back by `release`. */
export class TileArena implements Alloc {
  private readonly taken: ArrayBuffer[] = [];

  constructor(private readonly pool: BufferPool) {}

  float32(n: number): Float32Array {
    return new Float32Array(this.take(n * 4), 0, n);
  }

  float64(n: number): Float64Array {
    return new Float64Array(this.take(n * 8), 0, n);
  }

  bytes(n: number): Uint8Array {
    return new Uint8Array(this.take(n), 0, n);
  }

  private take(byteLength: number): ArrayBuffer {
    let buf = this.pool.take(byteLength);
    if (buf) new Uint8Array(buf).fill(0);
    else buf = new ArrayBuffer(byteLength);
    this.taken.push(buf);
    return buf;
  }

  /** Gives every buffer back but `keep` (one that leaves the thread, or outlives the tile). */
  release(keep?: ArrayBuffer): void {
    for (const buf of this.taken) if (buf !== keep) this.pool.give(buf);
    this.taken.length = 0;
  }
}
