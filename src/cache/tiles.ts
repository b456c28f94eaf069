import { LRUCache } from 'lru-cache';

/** An encoded tile, or an empty one (body null: 204 or a transparent tile). */
export interface TileEntry {
  body: Buffer | null;
  etag: string;
  /** Render timings in ms when this entry was just rendered. */
  timings?: { read: number; ops: number; encode: number };
}

export type CacheTier = 'hit-l1' | 'miss';

/**
 * The in-process tier: an LRU bounded in bytes, and single flight, so that concurrent
 * requests for one tile render it once.
 */
export class TileCache {
  private readonly l1: LRUCache<string, TileEntry> | undefined;
  private readonly inflight = new Map<string, Promise<TileEntry>>();

  constructor(maxBytes: number) {
    this.l1 =
      maxBytes > 0 ? new LRUCache<string, TileEntry>({ maxSize: maxBytes, sizeCalculation: (e, k) => (e.body?.length ?? 0) + k.length + 64 }) : undefined;
  }

  async get(key: string, produce: () => Promise<TileEntry>): Promise<{ entry: TileEntry; tier: CacheTier }> {
    const hit = this.l1?.get(key);
    if (hit) return { entry: hit, tier: 'hit-l1' };
    let p = this.inflight.get(key);
    if (!p) {
      p = produce()
        .then((entry) => {
          this.l1?.set(key, entry);
          return entry;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return { entry: await p, tier: 'miss' };
  }

  get bytes(): number {
    return this.l1?.calculatedSize ?? 0;
  }
}
