import { LRUCache } from 'lru-cache';
import type { Samples } from './types.js';

/**
 * Decoded blocks, shared by every source in this thread and bounded in bytes. It holds
 * promises so that two tiles wanting the same block decode it once; a failed read is
 * dropped so the next request tries again.
 */
export class BlockCache {
  private readonly lru: LRUCache<string, Promise<Samples>>;
  private readonly sizes = new Map<string, number>();

  constructor(maxBytes: number) {
    this.lru = new LRUCache<string, Promise<Samples>>({
      maxSize: Math.max(1, maxBytes),
      // A pending promise's size is unknown: count a nominal 64 KiB until it settles.
      sizeCalculation: (_v, key) => this.sizes.get(key) ?? 65536,
      dispose: (_v, key) => { this.sizes.delete(key); },
    });
  }

  get(key: string, load: () => Promise<Samples>): Promise<Samples> {
    const hit = this.lru.get(key);
    if (hit) return hit;
    const p = load();
    this.lru.set(key, p);
    p.then(
      (samples) => {
        if (this.lru.peek(key) !== p) return;
        this.sizes.set(key, Math.max(1, samples.byteLength));
        this.lru.set(key, p); // re-set so the LRU counts the real size
      },
      () => { if (this.lru.peek(key) === p) this.lru.delete(key); },
    );
    return p;
  }

  get bytes(): number { return this.lru.calculatedSize ?? 0; }
}

export const blockCache = new BlockCache(Number(process.env.BLOCK_CACHE_MB ?? 64) * 1024 * 1024);
