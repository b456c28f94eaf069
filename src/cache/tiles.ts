import { LRUCache } from 'lru-cache';
import type { L2Cache } from './l2.js';

/** An encoded tile, or an empty one (body null: 204 or a transparent tile). */
export interface TileEntry {
  body: Buffer | null;
  etag: string;
  /** Content-Type of the body. */
  type?: string;
  /** Render timings in ms when this entry was just rendered. */
  timings?: { read: number; ops: number; encode: number };
}

export type CacheTier = 'hit-l1' | 'hit-l2' | 'miss';

/** How long a tile's L2 entry lives, and how long a render may hold its lock. */
export interface EntryPolicy {
  ttlS: number;
  emptyTtlS: number;
  lockMs: number;
}

/**
 * The tiers in front of the renderer: the in-process LRU (bounded in bytes), then Redis when
 * there is one. Concurrent requests for one tile render it once: in this process by a map of
 * flights, across processes by a short Redis lock whose holder renders while the others wait
 * for its entry. A flight whose every client has gone (a map panned away) is called off: its
 * render, if it still waits for a thread, leaves the queue.
 */
/**
 * What an L1 entry costs beyond its body and strings: the entry object, its timings and the
 * LRU's own slots. Measured: an empty tile's entry with a 48-character key takes 600 to 720
 * bytes of heap (the more on a busy test run), so that a cache of empty tiles (a client
 * walking the ocean) holds to its bound as one of full ones does.
 */
const ENTRY_OVERHEAD = 600;

function entryBytes(e: TileEntry, key: string): number {
  return (e.body?.length ?? 0) + 2 * (key.length + e.etag.length) + ENTRY_OVERHEAD;
}

/** One tile being fetched or rendered for everyone who asks for it meanwhile. */
interface Flight {
  answer: Promise<{ entry: TileEntry; tier: CacheTier }>;
  /** Its clients that may still go away, and whether one that cannot (no signal: a seeding run) waits too. */
  leaving: number;
  staying: boolean;
  /** Given to `produce`: aborts once the last client has gone. */
  abort: AbortController;
}

export class TileCache {
  private readonly l1: LRUCache<string, TileEntry> | undefined;
  private readonly inflight = new Map<string, Flight>();

  constructor(
    maxBytes: number,
    readonly l2?: L2Cache,
  ) {
    this.l1 = maxBytes > 0 ? new LRUCache<string, TileEntry>({ maxSize: maxBytes, sizeCalculation: entryBytes }) : undefined;
  }

  /** The entry L1 holds, if any: a hit needs no promise. */
  peek(key: string): TileEntry | undefined {
    return this.l1?.get(key);
  }

  /**
   * The tile from the first tier that has it, else what `produce` makes of it, once however many
   * ask at once. `signal` aborts when this caller's client goes away; once every caller that
   * gave one has gone, and none that gave none waits, the signal `produce` was given aborts and
   * the next caller starts a flight of its own.
   */
  async get(
    key: string,
    policy: EntryPolicy,
    produce: (signal: AbortSignal) => Promise<TileEntry>,
    signal?: AbortSignal,
  ): Promise<{ entry: TileEntry; tier: CacheTier }> {
    const hit = this.l1?.get(key);
    if (hit) return { entry: hit, tier: 'hit-l1' };
    let f = this.inflight.get(key);
    if (!f) {
      const abort = new AbortController();
      const answer = this.fetch(key, policy, () => produce(abort.signal))
        .then((r) => {
          this.l1?.set(key, r.entry);
          return r;
        })
        .finally(() => {
          if (this.inflight.get(key) === flight) this.inflight.delete(key);
        });
      const flight: Flight = { answer, leaving: 0, staying: false, abort };
      this.inflight.set(key, (f = flight));
    }
    if (!signal) f.staying = true;
    else this.follow(key, f, signal);
    return f.answer;
  }

  /** Counts a client that may leave the flight, and calls the flight off when it was the last. */
  private follow(key: string, f: Flight, signal: AbortSignal): void {
    const leave = () => {
      if (--f.leaving > 0 || f.staying) return;
      if (this.inflight.get(key) === f) this.inflight.delete(key);
      f.abort.abort();
    };
    f.leaving++;
    if (signal.aborted) return leave();
    signal.addEventListener('abort', leave, { once: true });
    void f.answer.then(
      () => signal.removeEventListener('abort', leave),
      () => signal.removeEventListener('abort', leave),
    );
  }

  private async fetch(key: string, policy: EntryPolicy, produce: () => Promise<TileEntry>): Promise<{ entry: TileEntry; tier: CacheTier }> {
    const l2 = this.l2;
    if (!l2) return { entry: await produce(), tier: 'miss' };
    const found = await l2.get(key);
    if (found) return { entry: found, tier: 'hit-l2' };
    // Redis answered "none": take the tile's lock, or wait for the process that has it.
    let token = found === null ? await l2.lock(key, policy.lockMs) : undefined;
    if (token === null) {
      const waited = await l2.waitFor(key, policy.lockMs);
      if (waited.entry) return { entry: waited.entry, tier: 'hit-l2' };
      token = waited.token;
    }
    let entry: TileEntry;
    try {
      entry = await produce();
    } catch (err) {
      // Errors are never cached: let the next one try.
      if (token) void l2.unlock(key, token);
      throw err;
    }
    // Off the response path: the entry first, then the lock, so that a waiter finds one or the other.
    void l2.set(key, entry, entry.body ? policy.ttlS : policy.emptyTtlS).finally(() => token && l2.unlock(key, token));
    return { entry, tier: 'miss' };
  }

  get bytes(): number {
    return this.l1?.calculatedSize ?? 0;
  }
}
